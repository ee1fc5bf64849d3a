"""What every gateway domain shares: settings glue, the error tree, the database, secrets."""
