-- Cases still waiting for a carer (the directory copy had nobody yet): the scheduler sweeps them.
CREATE INDEX cases_waiting_for_carer ON cases (opened_at) WHERE state = 'open';
