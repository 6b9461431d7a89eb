CREATE TABLE blobs (event_id uuid PRIMARY KEY, n int NOT NULL);
