"""Jobs: notebooks run by papermill as production jobs, on demand or on a schedule."""
