alter table executions drop column lease_id;
