"""The ports: what services may ask of persistence, one small interface per area, with the
values each one takes and returns. ``store/`` implements them on SQLite and PostgreSQL;
``runtime`` wires the implementations in. Nothing here knows SQL, HTTP or SMTP."""
