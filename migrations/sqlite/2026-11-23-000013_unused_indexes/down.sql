CREATE INDEX change_log_entity ON change_log (entity, entity_id);
CREATE INDEX change_log_person ON change_log (person_id);
