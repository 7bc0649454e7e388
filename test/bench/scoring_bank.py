#!/usr/bin/python3
"""Predictive lead scoring on real data: UCI Bank Marketing (Moro, Laureano & Cortez, 2011).

Trains ecrm.logreg_train in PostgreSQL on a deterministic 80% (rows whose id % 5 <> 0, ids in file
order) and evaluates on the other 20%; trains scikit-learn's LogisticRegression on exactly the same
feature arrays (exported from the database) and split; prints both AUCs side by side and the
training times. `duration` is left out: it is only known after the call and leaks the outcome.

    PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... /usr/bin/python3 test/bench/scoring_bank.py \
        /work/shared/data/bank_marketing/bank-full-train.csv.gz [l2]
"""
import gzip
import io
import statistics
import sys
import time

import numpy as np
import psycopg2
import psycopg2.extras
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

path = sys.argv[1] if len(sys.argv) > 1 else '../shared/data/bank_marketing/bank-full-train.csv.gz'
l2 = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0

conn = psycopg2.connect('')
conn.autocommit = True
cur = conn.cursor()
cur.execute("SET max_parallel_workers_per_gather = 0")   # single core, as scikit-learn's lbfgs
cur.execute("""CREATE TEMP TABLE bank (age int, job text, marital text, education text, "default" text, balance int,
               housing text, loan text, contact text, day int, month text, duration int, campaign int, pdays int,
               previous int, poutcome text, y text)""")
with gzip.open(path, 'rt') as f:
    cur.copy_expert("COPY bank FROM STDIN WITH (FORMAT csv, HEADER true)", f)
cur.execute("ALTER TABLE bank ADD COLUMN id bigserial")   # file order
cur.execute("""CREATE TEMP TABLE bank_train AS SELECT * FROM bank WHERE id % 5 <> 0;
               CREATE TEMP TABLE bank_test AS SELECT * FROM bank WHERE id % 5 = 0""")
cur.execute("SELECT ecrm.feature_spec('bank_train', '{id,y,duration}')")
spec = cur.fetchone()[0]
cur.execute("""CREATE TEMP TABLE enc AS
               SELECT id, id %% 5 = 0 AS test, y = 'yes' AS label, ecrm.encode_features(%s, to_jsonb(b)) AS f FROM bank b""",
            (psycopg2.extras.Json(spec),))
cur.execute("ANALYZE enc")
cur.execute("SELECT count(*) FILTER (WHERE NOT test), count(*) FILTER (WHERE test), cardinality(min(f)) FROM enc")
n_train, n_test, d = cur.fetchone()


def timed(sql, args=(), reps=5):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        cur.execute(sql, args)
        row = cur.fetchone()
        times.append(time.perf_counter() - t)
    return row, min(times), statistics.median(times)


(model,), db_best, db_med = timed("SELECT ecrm.logreg_train(f, label, %s) FROM enc WHERE NOT test", (l2,))
_, e2e_best, e2e_med = timed("""SELECT ecrm.logreg_train(ecrm.encode_features(%s, to_jsonb(b)), b.y = 'yes', %s)
                                FROM bank_train b""", (psycopg2.extras.Json(spec), l2))
cur.execute("""SELECT ecrm.roc_auc(ecrm.logreg_predict(%s, f), label), ecrm.log_loss(ecrm.logreg_predict(%s, f), label)
               FROM enc WHERE test""", (psycopg2.extras.Json(model),) * 2)
db_auc, db_ll = cur.fetchone()

cur.execute("SELECT test, label, f FROM enc ORDER BY id")
rows = cur.fetchall()
X = np.array([r[2] for r in rows], dtype=np.float64)
y = np.array([r[1] for r in rows], dtype=bool)
test = np.array([r[0] for r in rows], dtype=bool)
times = []
for _ in range(5):
    t = time.perf_counter()
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / l2, max_iter=10000, tol=1e-10))
    clf.fit(X[~test], y[~test])
    times.append(time.perf_counter() - t)
sk_p = clf.predict_proba(X[test])[:, 1]
sk_auc = roc_auc_score(y[test], sk_p)
sk_coef = clf[-1].coef_[0] / clf[0].scale_
db_coef = np.array(model['coef'])

print(f"Bank Marketing ({path}): {n_train} training rows, {n_test} test rows, {d} features "
      f"({len(spec['features'])} attributes, duration left out), l2 = {l2} (scikit-learn C = {1 / l2:g})")
print(f"{'':34}{'ecrm (in PostgreSQL)':>22}{'scikit-learn':>16}")
print(f"{'test ROC AUC':34}{db_auc:>22.5f}{sk_auc:>16.5f}")
print(f"{'test log loss':34}{db_ll:>22.5f}{float(np.mean(-np.log(np.where(y[test], sk_p, 1 - sk_p)))):>16.5f}")
print(f"{'training time, best of 5 (median)':34}{db_best * 1000:>13.0f} ms ({db_med * 1000:.0f}){min(times) * 1000:>9.0f} ms ({statistics.median(times) * 1000:.0f})")
print(f"{'  with feature encoding from rows':34}{e2e_best * 1000:>13.0f} ms ({e2e_med * 1000:.0f})")
print(f"Newton iterations: {model['iterations']}, converged: {model['converged']}; "
      f"largest coefficient difference from scikit-learn: {np.max(np.abs(sk_coef - db_coef)):.2e}")
ok_auc = abs(db_auc - sk_auc) <= 0.005
ok_time = db_best <= 1.0
print(f"AUC within 0.005 of scikit-learn: {'yes' if ok_auc else 'NO'} (difference {abs(db_auc - sk_auc):.6f}); "
      f"training <= 1 s: {'yes' if ok_time else 'NO'}")
sys.exit(0 if ok_auc and ok_time else 1)
