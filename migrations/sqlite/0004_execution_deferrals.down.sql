alter table executions drop column deferrals;
