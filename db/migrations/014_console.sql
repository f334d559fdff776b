-- Up Migration

-- The web console (api/console.ts): its logins, their sessions, the failed logins that throttle
-- them, and the audit of every change made through it.

-- A login: an operator (every merchant) or one merchant's staff. The password is kept only as a
-- self-describing scrypt hash (lib/console/users.ts).
CREATE TABLE console_users (
  id            text PRIMARY KEY,
  email         text NOT NULL CHECK (email = btrim(email) AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(email) <= 254),
  password_hash text NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
  role          text NOT NULL CHECK (role = 'operator' OR role ~ '^merchant:m[a-z0-9]{9}$'),
  -- The merchant of a merchant:<id> role, which must exist.
  merchant_id   text GENERATED ALWAYS AS (CASE WHEN role LIKE 'merchant:%' THEN substr(role, 10) END) STORED REFERENCES merchants (id),
  disabled      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- One login per address, whatever its case.
CREATE UNIQUE INDEX console_users_email_idx ON console_users (lower(email));

-- A session: only the SHA-256 of its cookie is kept. It ends CONSOLE_SESSION_IDLE after its last
-- request, or at expires_at (CONSOLE_SESSION_MAX after the login), whichever comes first.
CREATE TABLE console_sessions (
  token_hash   bytea PRIMARY KEY,
  user_id      text NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
  csrf_token   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  address      text
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

-- Failed logins, by the e-mail address tried (lower case) and the client address: more than 5 of
-- either within 15 minutes and the next login is refused (429), so every API process agrees.
CREATE TABLE console_login_failures (
  id      bigserial PRIMARY KEY,
  email   text NOT NULL,
  address text NOT NULL,
  at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_login_failures_email_idx ON console_login_failures (email, at);
CREATE INDEX console_login_failures_address_idx ON console_login_failures (address, at);

-- Every change made through the console, after its answer: who, what, when, from where.
CREATE TABLE console_audit (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  user_id    text,
  user_email text,
  user_role  text,
  action     text NOT NULL,
  target     jsonb NOT NULL DEFAULT '{}',
  status     integer NOT NULL,
  address    text,
  request_id text,
  detail     jsonb
);

-- Down Migration
DROP TABLE console_audit;
DROP TABLE console_login_failures;
DROP TABLE console_sessions;
DROP TABLE console_users;
