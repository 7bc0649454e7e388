#!/usr/bin/python3
"""Reference item-kNN recommender in Python (numpy + scipy), for comparison with ecrm on the same split.

    /usr/bin/python3 recommend_reference_knn.py online_retail.csv.gz [--split 2011-07-01] [--k 10] [--neighbors 50]

The textbook item-based kNN (Sarwar et al. 2001; Linden et al. 2003): a binary customer x product matrix of
purchases before the split, cosine similarity between product columns, the top `neighbors` similar products
kept per product, a customer's score for a product = the sum of its similarities to the products they bought;
products they bought are left out.  The data is cleaned as the ecrm benchmark does (cancelled invoices, non-product
stock codes and rows without a customer dropped) and evaluated the same way: customers who bought before the split
and bought something new to them after it; hit rate, precision, recall and NDCG at k, catalogue coverage.
Prints one line of figures (and JSON with --json).
"""
import argparse
import csv
import gzip
import json
import math
import re
import time

import numpy as np
import scipy.sparse as sp

PRODUCT = re.compile(r'^[0-9]{5}[A-Za-z]*$')


def load(path):
    rows = []
    with gzip.open(path, 'rt', encoding='utf-8', newline='') as f:
        for r in csv.DictReader(f):
            if r['InvoiceNo'].startswith('C') or not PRODUCT.match(r['StockCode']) or not r['CustomerID']:
                continue
            if int(r['Quantity']) <= 0:
                continue
            rows.append((r['CustomerID'], r['StockCode'].upper(), r['InvoiceDate']))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('csv')
    ap.add_argument('--split', default='2011-07-01')
    ap.add_argument('--until', default=None, help='end of the test period (default: all after the split)')
    ap.add_argument('--k', type=int, default=10)
    ap.add_argument('--neighbors', type=int, default=50)
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()

    rows = load(a.csv)
    train = [r for r in rows if r[2] < a.split]
    test = [r for r in rows if r[2] >= a.split and (a.until is None or r[2] < a.until)]
    customers = sorted({r[0] for r in train})
    products = sorted({r[1] for r in rows})
    ci = {c: i for i, c in enumerate(customers)}
    pi = {p: i for i, p in enumerate(products)}
    pairs = {(ci[c], pi[p]) for c, p, _ in train}
    t0 = time.perf_counter()
    R = sp.csr_matrix((np.ones(len(pairs)), ([u for u, _ in pairs], [i for _, i in pairs])),
                      shape=(len(customers), len(products)))
    # cosine between product columns, top neighbours per product
    norms = np.sqrt(np.asarray(R.multiply(R).sum(axis=0)).ravel())
    norms[norms == 0] = 1
    C = (R.T @ R).tocsr().astype(np.float64)
    C = sp.diags(1 / norms) @ C @ sp.diags(1 / norms)
    C = (C - sp.diags(C.diagonal())).tocsr()
    C.eliminate_zeros()
    keep_r, keep_c, keep_v = [], [], []
    for i in range(C.shape[0]):
        lo, hi = C.indptr[i], C.indptr[i + 1]
        idx, val = C.indices[lo:hi], C.data[lo:hi]
        if len(val) > a.neighbors:
            top = np.argpartition(-val, a.neighbors)[:a.neighbors]
            idx, val = idx[top], val[top]
        keep_r.extend([i] * len(idx))
        keep_c.extend(idx)
        keep_v.extend(val)
    S = sp.csr_matrix((keep_v, (keep_r, keep_c)), shape=C.shape)
    build = time.perf_counter() - t0

    bought = {}
    for u, i in pairs:
        bought.setdefault(u, set()).add(i)
    truth = {}
    for c, p, _ in test:
        if c in ci and pi[p] not in bought.get(ci[c], ()):
            truth.setdefault(ci[c], set()).add(pi[p])
    users = sorted(truth)
    t0 = time.perf_counter()
    scores = (R[users] @ S).toarray()
    disc = 1 / np.log2(np.arange(2, a.k + 2))
    hits = prec = rec = ndcg = 0.0
    shown = set()
    for row, u in enumerate(users):
        s = scores[row]
        s[list(bought[u])] = -np.inf
        # the k best, ties to the lower index (the lower stock code)
        order = np.lexsort((np.arange(len(s)), -s))[:a.k]
        order = [i for i in order if np.isfinite(s[i])]
        shown.update(order)
        h = np.array([1.0 if i in truth[u] else 0.0 for i in order] + [0.0] * (a.k - len(order)))
        hits += h.any()
        prec += h.sum() / a.k
        rec += h.sum() / len(truth[u])
        ndcg += (h * disc).sum() / disc[:min(a.k, len(truth[u]))].sum()
    serve = time.perf_counter() - t0
    n = len(users)
    res = {'model': 'python_item_knn', 'customers': n, 'hit_rate': hits / n, 'precision': prec / n,
           'recall': rec / n, 'ndcg': ndcg / n, 'coverage': len(shown) / len(products),
           'train_seconds': build, 'serve_seconds': serve}
    if a.json:
        print(json.dumps(res))
    else:
        print('%(model)s customers %(customers)d HR %(hit_rate).4f P %(precision).4f R %(recall).4f '
              'NDCG %(ndcg).4f coverage %(coverage).4f build %(train_seconds).2fs' % res)


if __name__ == '__main__':
    main()
