-- A family with no child yet (or none any more) is tied to no school through its students. It belongs to the org
-- unit of the admin who registered it: that admin's unit (and those above it) may read it, change it and link a
-- child to it; nobody else. NULL: registered by an import (a bureau admin over the city) — bureau admins only.
ALTER TABLE families ADD COLUMN IF NOT EXISTS registered_by_path text;
