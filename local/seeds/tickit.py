"""TICKIT-shaped sales data in the local PostgreSQL (the Redshift stand-in).

The tables have the columns of Redshift's TICKIT sample (``sales`` and ``date``); ``qtr`` is
a number rather than TICKIT's CHAR(5), so quarters sort and compare without padding. Rows
are generated inside PostgreSQL (``generate_series`` with a fixed ``setseed``), so millions
of rows cost seconds and never cross the wire; the same arguments give the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

DATABASE = "warehouse"
SCHEMA = "tickit"


@dataclass(frozen=True)
class TickitData:
    sales_rows: int = 100_000
    first_year: int = 2021
    last_year: int = 2024
    seed: float = 0.42  # PostgreSQL's setseed takes [-1, 1]

    def describe(self) -> dict:
        return {"schema": SCHEMA, "database": DATABASE, "sales_rows": self.sales_rows,
                "years": [self.first_year, self.last_year]}  # fmt: skip


def tickit_sql(data: TickitData, schema: str = SCHEMA) -> str:
    if data.sales_rows < 0 or data.first_year > data.last_year:
        raise ValueError(f"bad TICKIT sizes: {data}")
    return f"""
CREATE SCHEMA IF NOT EXISTS {schema};
DROP TABLE IF EXISTS {schema}.sales;
DROP TABLE IF EXISTS {schema}.date;
CREATE TABLE {schema}.date (
  dateid smallint PRIMARY KEY, caldate date NOT NULL, day char(3) NOT NULL, week smallint NOT NULL,
  month char(5) NOT NULL, qtr smallint NOT NULL, year smallint NOT NULL, holiday boolean DEFAULT false);
CREATE TABLE {schema}.sales (
  salesid integer PRIMARY KEY, listid integer NOT NULL, sellerid integer NOT NULL, buyerid integer NOT NULL,
  eventid integer NOT NULL, dateid smallint NOT NULL, qtysold smallint NOT NULL,
  pricepaid decimal(8,2), commission decimal(8,2), saletime timestamp);
SELECT setseed({data.seed});
INSERT INTO {schema}.date
SELECT row_number() OVER (ORDER BY d)::smallint, d::date, to_char(d, 'Dy'), extract(week FROM d)::smallint,
       to_char(d, 'Mon'), extract(quarter FROM d)::smallint, extract(year FROM d)::smallint,
       (extract(month FROM d) = 12 AND extract(day FROM d) IN (24, 25, 31))
FROM generate_series(make_date({data.first_year}, 1, 1), make_date({data.last_year}, 12, 31), interval '1 day') AS d;
INSERT INTO {schema}.sales
SELECT g.salesid, g.listid, g.sellerid, g.buyerid, g.eventid, g.dateid, g.qtysold, g.pricepaid,
       round(g.pricepaid * 0.15, 2), d.caldate + make_interval(secs => g.second_of_day)
FROM (
  SELECT n AS salesid, 1 + floor(random() * 200000)::int AS listid, 1 + floor(random() * 50000)::int AS sellerid,
         1 + floor(random() * 50000)::int AS buyerid, 1 + floor(random() * 8000)::int AS eventid,
         1 + floor(random() * (SELECT count(*) FROM {schema}.date))::smallint AS dateid,
         1 + floor(random() * 4)::smallint AS qtysold, round((20 + random() * 1980)::numeric, 2) AS pricepaid,
         floor(random() * 86400) AS second_of_day
  FROM generate_series(1, {int(data.sales_rows)}) AS n
) AS g JOIN {schema}.date AS d ON d.dateid = g.dateid;
ANALYZE {schema}.date;
ANALYZE {schema}.sales;
"""


def seed_tickit(host: str, port: int, user: str, data: TickitData = TickitData(), db: str = DATABASE) -> dict:
    """(Re)create ``tickit.sales`` and ``tickit.date`` in ``db``; return what was made.

    psycopg2 (not the psql CLI) so the docker-compose seed container, which has no
    PostgreSQL client, seeds the same way.
    """
    import psycopg2

    with psycopg2.connect(host=host, port=port, user=user, dbname=db) as conn, conn.cursor() as cur:
        cur.execute(tickit_sql(data))
        cur.execute(f"SELECT count(*) FROM {SCHEMA}.sales")
        counted = cur.fetchone()[0]
    conn.close()
    return {**data.describe(), "sales_rows": int(counted)}
