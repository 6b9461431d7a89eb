-- Distinct teachers and families per node were stored as one weight row per entity, scope, metric and path: a
-- million rows rewritten by the refreshes of a city-wide campaign. A leaf now counts its distinct entities
-- itself (count DISTINCT over its facts), and only entities seen at several paths keep rows: the -1 corrections at
-- the common ancestors of their paths (see domain/entities.py). The figures are recomputed in full at the next
-- refresh (figures_lost: node_metrics is empty).
DROP TABLE entity_weights;
CREATE UNLOGGED TABLE entity_corrections (
    kind      text NOT NULL,
    entity_id text NOT NULL,
    scope     text NOT NULL,
    metric    text NOT NULL,
    node      text NOT NULL,
    weight    int NOT NULL,
    PRIMARY KEY (kind, entity_id, scope, metric, node)
);
CREATE INDEX entity_corrections_node ON entity_corrections (node);
TRUNCATE leaf_metrics, node_metrics, node_extra;
