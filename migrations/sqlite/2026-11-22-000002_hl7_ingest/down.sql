DROP INDEX observations_submission;
ALTER TABLE observations DROP COLUMN submission_id;
ALTER TABLE encounters DROP COLUMN prior_location;
DROP TABLE person_merges;
DROP TABLE review_queue;
DROP TABLE submissions;
