-- docker-compose only: durapay's own database beside Temporal's, on the same PostgreSQL.
CREATE USER durapay WITH PASSWORD 'durapay';
CREATE DATABASE durapay OWNER durapay;
