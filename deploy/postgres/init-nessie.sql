-- First start of the postgres service: a database for the optional Nessie catalog profile.
CREATE DATABASE nessie OWNER rat;
