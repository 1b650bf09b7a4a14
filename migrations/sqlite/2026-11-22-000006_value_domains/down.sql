DROP TABLE value_domain_versions;
