-- An uploaded file is kept in parts of about a megabyte (`store.imports.PART_BYTES`), written as the upload's
-- bytes arrive and read back one at a time by the job, so neither holds a whole file (a city's guardians are
-- tens of MB, a province's hundreds). Stored uncompressed: the parts live minutes, and compressing them cost
-- PostgreSQL more CPU than the disk they would save.
CREATE TABLE import_file_parts (
    import_id  text NOT NULL REFERENCES imports (import_id) ON DELETE CASCADE,
    entity     text NOT NULL,
    part       integer NOT NULL,
    content    bytea NOT NULL,
    PRIMARY KEY (import_id, entity, part)
);
ALTER TABLE import_file_parts ALTER COLUMN content SET STORAGE EXTERNAL;
INSERT INTO import_file_parts (import_id, entity, part, content)
SELECT import_id, entity, 0, convert_to(content, 'UTF8') FROM import_files;
DROP TABLE import_files;
