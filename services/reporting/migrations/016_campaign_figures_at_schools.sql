-- The campaign facts' figures (assignments, visits, findings) are stored and folded at the schools and above only
-- (store/refresh.py CAMPAIGN_TABLES); a grade's or class's are summed from its facts when read. leaf_metrics no
-- longer holds them: the figures are recomputed in full at the next refresh (figures_lost: node_metrics is empty).
TRUNCATE leaf_metrics, node_metrics, node_extra, entity_corrections;
