/*
 * gbdt.c — gradient-boosted decision trees for binary classification
 * (logistic loss): a training aggregate, prediction and exact TreeSHAP.
 *
 * Training is histogram based.  Each feature is cut into at most max_bins
 * bins (midpoints between distinct values when there are few, quantiles of
 * the training rows otherwise); NaN or a NULL element is "missing" and has a
 * bin of its own.  Trees grow depth-wise to max_depth.  With only a depth
 * limit, growing depth-wise and growing each node recursively give the same
 * tree, so nodes are split recursively: the histogram of the smaller child is
 * built and the larger one's is the parent's minus it, and only the
 * histograms along the current path are alive (memory: 2 * (max_depth + 1) *
 * sum of bins over features).  With max_leaf_nodes, trees grow leaf-wise instead
 * (the open leaf of largest gain is split first), keeping one histogram per
 * open leaf.  A split sends the rows whose value is at most
 * the threshold left and missing values to the side that gained most (the
 * larger child when the node saw no missing value).  Leaves are
 * -learning_rate * G / (H + l2).  Early stopping watches the log loss of a
 * validation fraction drawn by a seeded hash of the row number, and the model
 * keeps the trees up to the best round.
 *
 * Categorical attributes are not split natively: the caller one-hot encodes
 * them (ecrm.encode_features does), each level a 0/1 feature.
 *
 * The model is jsonb: per tree parallel arrays feature, threshold,
 * missing_left, left, right, value, cover (training rows reaching the node).
 * Prediction caches the parsed model in fn_extra, recognised by the raw bytes
 * of the argument (or, for a large model passed in memory, by its address,
 * length and fingerprint) so scoring many rows parses it once.
 *
 * Explanations are the path-dependent TreeSHAP of Lundberg, Erion and Lee
 * (2018, algorithm 2): exact Shapley values of the cover-weighted conditional
 * expectation, in O(leaves * depth^2) per tree.  With the base value
 * ("baseline_logit": base score plus each tree's cover-weighted mean leaf)
 * they add up to the raw score (log-odds).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "scoring.h"

#define GBDT_FORMAT			1
#define GBDT_MISSING_BIN	255
/* Most cells (rows * features) a training may hold: 20 million, 160 MB of float8 plus 20 MB of bins. */
#define GBDT_MAX_CELLS		20000000
#define GBDT_MAX_DEPTH		16
#define GBDT_MAX_TREE_DEPTH	64		/* of a model read back (hand-made models included) */
#define GBDT_MAX_NODES		10000000

/* ---------------------------------------------------------------------------
 * Training aggregate: collect the rows
 * ------------------------------------------------------------------------- */

typedef struct GbdtState
{
	int64		n;				/* rows */
	int			k;				/* features per row (from the first row) */
	int64		cap;			/* rows allocated */
	double	   *x;				/* n * k, row-major; NaN = missing */
	uint8	   *y;
	Jsonb	   *params;			/* of the first row, or NULL */
} GbdtState;

typedef struct GbdtParams
{
	double		learning_rate;
	int			max_depth;
	int			max_leaf_nodes;	/* 0: depth-wise */
	int			max_iter;
	int			min_samples_leaf;
	double		l2;
	int			max_bins;
	double		validation_fraction;
	int			n_iter_no_change;
	double		tol;
	int64		seed;
} GbdtParams;

static void GbdtReserve(GbdtState *st, int64 more);

/* The values of a float8[] feature array: one-dimensional; NULL elements and NaN become NaN (missing). */
static int
ReadFeatures(ArrayType *a, double *out, int k, const char *what)
{
	int			n;
	bits8	   *bitmap;
	double	   *v;
	int			i,
				j;

	if (ARR_ELEMTYPE(a) != FLOAT8OID)
		elog(ERROR, "%s must be a float8 array", what);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array, not %d-dimensional", what, ARR_NDIM(a)),
				 errdetail("A row's features are one float8[] with one element per feature.")));
	n = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	if (k >= 0 && n != k)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s has %d elements, the model has %d features", what, n, k),
				 errdetail("Every row must give one value per feature, in the order the model was trained with.")));
	if (out == NULL)
		return n;
	v = (double *) EcrmArrayData(a);
	bitmap = ARR_NULLBITMAP(a);
	for (i = 0, j = 0; i < n; i++)
	{
		if (bitmap != NULL && !(bitmap[i / 8] & (1 << (i % 8))))
			out[i] = get_float8_nan();
		else
			out[i] = v[j++];
	}
	return n;
}

PG_FUNCTION_INFO_V1(ecrm_gbdt_train_trans);
Datum
ecrm_gbdt_train_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MemoryContext old;
	GbdtState  *st;
	ArrayType  *a;
	double		label;
	int			k,
				j;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "ecrm_gbdt_train_trans called in non-aggregate context");
	st = PG_ARGISNULL(0) ? NULL : (GbdtState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features of training row " INT64_FORMAT " are NULL", (st ? st->n : 0) + 1),
				 errdetail("Each training row needs a float8[] of features; a missing value is a NULL or NaN element."),
				 errhint("Use an array of NULLs for a row with no known feature, or leave the row out.")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("label of training row " INT64_FORMAT " is NULL", (st ? st->n : 0) + 1),
				 errdetail("Gradient-boosted trees learn from rows whose label is known."),
				 errhint("Leave rows without a label out, for example WHERE label IS NOT NULL.")));
	if (get_fn_expr_argtype(fcinfo->flinfo, 2) == BOOLOID)
		label = PG_GETARG_BOOL(2) ? 1.0 : 0.0;
	else
	{
		label = PG_GETARG_FLOAT8(2);
		if (label != 0.0 && label != 1.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("label of training row " INT64_FORMAT " is %g, not 0 or 1", (st ? st->n : 0) + 1, label),
					 errdetail("A binary classifier needs labels 0 and 1; NaN is not a label.")));
	}
	a = PG_GETARG_ARRAYTYPE_P(1);

	old = MemoryContextSwitchTo(aggcxt);
	if (st == NULL)
	{
		st = (GbdtState *) palloc0(sizeof(GbdtState));
		st->k = ReadFeatures(a, NULL, -1, "features");
		if (st->k == 0)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("features must not be empty"),
					 errdetail("A model needs at least one feature.")));
		if (st->k > ECRM_MAX_FEATURES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("at most %d features, not %d", ECRM_MAX_FEATURES, st->k),
					 errdetail("Gradient-boosted trees are limited to %d features.", ECRM_MAX_FEATURES)));
		st->cap = 1024;
		st->x = (double *) palloc(mul_size(st->cap, st->k * sizeof(double)));
		st->y = (uint8 *) palloc(st->cap);
		if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
			st->params = DatumGetJsonbPCopy(PG_GETARG_DATUM(3));
	}
	k = st->k;
	GbdtReserve(st, 1);
	MemoryContextSwitchTo(old);
	ReadFeatures(a, st->x + st->n * k, k, "features");
	for (j = 0; j < k; j++)
		if (isinf(st->x[st->n * k + j]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature %d of training row " INT64_FORMAT " is infinite", j + 1, st->n + 1),
					 errdetail("Training values must be finite numbers; NaN or NULL means missing.")));
	st->y[st->n] = (uint8) label;
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Make room for `more` rows, within the bound on cells. */
static void
GbdtReserve(GbdtState *st, int64 more)
{
	int64		need = st->n + more;
	int64		cap;

	if (need <= st->cap)
		return;
	if (need * (int64) st->k > GBDT_MAX_CELLS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many training values: at most %d rows times features", GBDT_MAX_CELLS),
				 errdetail("The training set has more than " INT64_FORMAT " rows of %d features.", st->n, st->k),
				 errhint("Train on a sample, for example with TABLESAMPLE.")));
	cap = Max(need, st->cap * 2);
	if (cap * st->k > GBDT_MAX_CELLS)
		cap = GBDT_MAX_CELLS / st->k + 1;
	st->x = (double *) repalloc(st->x, mul_size(cap, st->k * sizeof(double)));
	st->y = (uint8 *) repalloc(st->y, cap);
	st->cap = cap;
}

/*
 * Parallel aggregation: the partial states are concatenated.  The validation
 * split follows the row order, so a parallel run can keep other rows for
 * validation than a serial one; ORDER BY in the aggregate gives one order.
 */
PG_FUNCTION_INFO_V1(ecrm_gbdt_train_combine);
Datum
ecrm_gbdt_train_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	MemoryContext old;
	GbdtState  *a = PG_ARGISNULL(0) ? NULL : (GbdtState *) PG_GETARG_POINTER(0);
	GbdtState  *b = PG_ARGISNULL(1) ? NULL : (GbdtState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "ecrm_gbdt_train_combine called in non-aggregate context");
	if (b == NULL || b->n == 0)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	old = MemoryContextSwitchTo(aggcxt);
	if (a == NULL)
	{
		a = (GbdtState *) palloc0(sizeof(GbdtState));
		a->k = b->k;
		a->cap = Max(b->n, 1);
		a->x = (double *) palloc(mul_size(a->cap, a->k * sizeof(double)));
		a->y = (uint8 *) palloc(a->cap);
	}
	if (a->k != b->k)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features has %d elements, the model has %d features", b->k, a->k),
				 errdetail("Every row must give one value per feature, in the order the model was trained with.")));
	if (a->params == NULL && b->params != NULL)
	{
		a->params = (Jsonb *) palloc(VARSIZE(b->params));
		memcpy(a->params, b->params, VARSIZE(b->params));
	}
	GbdtReserve(a, b->n);
	memcpy(a->x + a->n * a->k, b->x, sizeof(double) * b->n * b->k);
	memcpy(a->y + a->n, b->y, b->n);
	a->n += b->n;
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(ecrm_gbdt_train_serialize);
Datum
ecrm_gbdt_train_serialize(PG_FUNCTION_ARGS)
{
	GbdtState  *st = (GbdtState *) PG_GETARG_POINTER(0);
	int32		plen = st->params ? VARSIZE(st->params) : 0;
	Size		len = add_size(add_size(VARHDRSZ + sizeof(int64) + 2 * sizeof(int32), plen),
							   add_size(mul_size(st->n, st->k * sizeof(double)), st->n));
	bytea	   *out;
	char	   *p;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "ecrm_gbdt_train_serialize called in non-aggregate context");
	if (len > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the partial training set of a parallel worker is too large to pass on"),
				 errdetail("It holds " INT64_FORMAT " rows of %d features.", st->n, st->k),
				 errhint("Train on a sample, or add ORDER BY to the aggregate to train in one process.")));
	out = (bytea *) palloc(len);
	SET_VARSIZE(out, len);
	p = VARDATA(out);
	memcpy(p, &st->n, sizeof(int64));
	p += sizeof(int64);
	memcpy(p, &st->k, sizeof(int32));
	p += sizeof(int32);
	memcpy(p, &plen, sizeof(int32));
	p += sizeof(int32);
	if (plen > 0)
		memcpy(p, st->params, plen);
	p += plen;
	memcpy(p, st->x, sizeof(double) * st->n * st->k);
	p += sizeof(double) * st->n * st->k;
	memcpy(p, st->y, st->n);
	PG_RETURN_BYTEA_P(out);
}

PG_FUNCTION_INFO_V1(ecrm_gbdt_train_deserialize);
Datum
ecrm_gbdt_train_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(in);
	Size		len = VARSIZE_ANY_EXHDR(in);
	GbdtState  *st;
	int32		plen;
	int64		i;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "ecrm_gbdt_train_deserialize called in non-aggregate context");
	st = (GbdtState *) palloc0(sizeof(GbdtState));
	if (len < sizeof(int64) + 2 * sizeof(int32))
		elog(ERROR, "invalid gbdt training state");
	memcpy(&st->n, p, sizeof(int64));
	memcpy(&st->k, p + sizeof(int64), sizeof(int32));
	memcpy(&plen, p + sizeof(int64) + sizeof(int32), sizeof(int32));
	p += sizeof(int64) + 2 * sizeof(int32);
	if (st->k < 1 || st->k > ECRM_MAX_FEATURES || st->n < 0 || st->n * st->k > GBDT_MAX_CELLS || plen < 0 ||
		len != sizeof(int64) + 2 * sizeof(int32) + plen + st->n * st->k * sizeof(double) + st->n)
		elog(ERROR, "invalid gbdt training state");
	if (plen > 0)
	{
		st->params = (Jsonb *) palloc(plen);
		memcpy(st->params, p, plen);
		p += plen;
	}
	st->cap = Max(st->n, 1);
	st->x = (double *) palloc(mul_size(st->cap, st->k * sizeof(double)));
	st->y = (uint8 *) palloc(st->cap);
	memcpy(st->x, p, sizeof(double) * st->n * st->k);
	p += sizeof(double) * st->n * st->k;
	memcpy(st->y, p, st->n);
	for (i = 0; i < st->n; i++)
		if (st->y[i] > 1)
			elog(ERROR, "invalid gbdt training state");
	PG_RETURN_POINTER(st);
}

/* ---------------------------------------------------------------------------
 * Parameters
 * ------------------------------------------------------------------------- */

static void
ParamError(const char *name, const char *range)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("gbdt parameter \"%s\" must be %s", name, range),
			 errdetail("The parameters are a jsonb object such as {\"max_depth\": 6, \"learning_rate\": 0.1}.")));
}

static double
ParamNumber(JsonbContainer *c, const char *name, double dflt, double lo, double hi, bool lo_open, const char *range)
{
	JsonbValue *v = EcrmJsonbKey(c, name);
	double		d;

	if (v == NULL || v->type == jbvNull)
		return dflt;
	if (v->type != jbvNumeric || !EcrmJsonbFloat8(v, &d) || d < lo || d > hi || (lo_open && d == lo))
		ParamError(name, range);
	return d;
}

static int
ParamInt(JsonbContainer *c, const char *name, int dflt, int lo, int hi, const char *range)
{
	double		d = ParamNumber(c, name, dflt, lo, hi, false, range);

	if (d != floor(d))
		ParamError(name, range);
	return (int) d;
}

static void
ReadParams(Jsonb *jb, GbdtParams *p)
{
	static const char *const known[] = {"learning_rate", "max_depth", "max_leaf_nodes", "max_iter", "min_samples_leaf", "l2",
		"max_bins", "validation_fraction", "n_iter_no_change", "tol", "seed"};
	JsonbContainer *c;

	p->learning_rate = 0.1;
	p->max_depth = 6;
	p->max_leaf_nodes = 0;
	p->max_iter = 100;
	p->min_samples_leaf = 20;
	p->l2 = 0.0;
	p->max_bins = 255;
	p->validation_fraction = 0.1;
	p->n_iter_no_change = 10;
	p->tol = 1e-7;
	p->seed = 0;
	if (jb == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gbdt parameters must be a jsonb object"),
				 errdetail("For example {\"max_depth\": 6, \"learning_rate\": 0.1}.")));
	c = &jb->root;
	/* a misspelt parameter is an error, not a silent default */
	{
		JsonbIterator *it = JsonbIteratorInit(c);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			bool		ok = false;
			int			i;

			if (tok != WJB_KEY)
				continue;
			for (i = 0; i < (int) lengthof(known); i++)
				if (strlen(known[i]) == (size_t) v.val.string.len &&
					memcmp(known[i], v.val.string.val, v.val.string.len) == 0)
					ok = true;
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown gbdt parameter \"%.*s\"", Min(v.val.string.len, 100), v.val.string.val),
						 errdetail("The parameters are learning_rate, max_depth, max_leaf_nodes, max_iter, min_samples_leaf, l2, max_bins, validation_fraction, n_iter_no_change, tol and seed.")));
		}
	}
	p->learning_rate = ParamNumber(c, "learning_rate", p->learning_rate, 0, 1, true, "greater than 0 and at most 1");
	p->max_depth = ParamInt(c, "max_depth", p->max_depth, 1, GBDT_MAX_DEPTH, "an integer between 1 and 16");
	p->max_leaf_nodes = ParamInt(c, "max_leaf_nodes", 0, 0, 256, "an integer between 2 and 256, or 0 for depth-wise growth");
	if (p->max_leaf_nodes == 1)
		ParamError("max_leaf_nodes", "an integer between 2 and 256, or 0 for depth-wise growth");
	p->max_iter = ParamInt(c, "max_iter", p->max_iter, 1, 10000, "an integer between 1 and 10000");
	p->min_samples_leaf = ParamInt(c, "min_samples_leaf", p->min_samples_leaf, 1, 1000000, "an integer between 1 and 1000000");
	p->l2 = ParamNumber(c, "l2", p->l2, 0, 1e6, false, "between 0 and 1000000");
	p->max_bins = ParamInt(c, "max_bins", p->max_bins, 2, 255, "an integer between 2 and 255");
	p->validation_fraction = ParamNumber(c, "validation_fraction", p->validation_fraction, 0, 0.5, false,
										 "between 0 (no early stopping) and 0.5");
	p->n_iter_no_change = ParamInt(c, "n_iter_no_change", p->n_iter_no_change, 1, 10000, "an integer between 1 and 10000");
	p->tol = ParamNumber(c, "tol", p->tol, 0, 1, false, "between 0 and 1");
	p->seed = (int64) ParamNumber(c, "seed", 0, -1e15, 1e15, false, "an integer between -1e15 and 1e15");
}

/* ---------------------------------------------------------------------------
 * Training
 * ------------------------------------------------------------------------- */

typedef struct HistBin
{
	double		g;
	double		h;
	double		c;
} HistBin;

typedef struct Tree
{
	int			n;				/* nodes */
	int			cap;
	int		   *feature;		/* -1 at a leaf */
	double	   *threshold;
	bool	   *missing_left;
	int		   *left;
	int		   *right;
	double	   *value;
	double	   *cover;
} Tree;

typedef struct Trainer
{
	GbdtParams	p;
	int64		n;				/* all rows */
	int			k;
	const double *x;
	const uint8 *y;
	uint8	   *bins;			/* k * n, column-major */
	int		   *nbins;			/* per feature, bins of values (missing is GBDT_MISSING_BIN) */
	int		   *hoff;			/* per feature, its offset in a histogram (nbins + 1 slots, the last missing) */
	int			hsize;
	double	  **thr;			/* per feature, nbins - 1 thresholds: bin b holds thr[b-1] < x <= thr[b] */
	double	   *g;
	double	   *h;
	int64	   *rows;			/* training rows, partitioned by node */
	int64	   *tmp;
	double	   *raw;			/* raw score of every row */
	HistBin   **hist;			/* 2 per depth */
	HistBin   **hist_leafwise;	/* max_leaf_nodes, leaf-wise growth only */
	HistBin   **pool;
} Trainer;

static uint64
SplitMix(uint64 x)
{
	x += UINT64CONST(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

static int
CmpDouble(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Cut feature f of the training rows into bins and bin every row. */
static void
BinFeature(Trainer *t, int f, const int64 *rows, int64 ntrain, double *buf)
{
	int64		m = 0,
				i,
				d = 0;
	int			nb,
				b;
	double	   *thr;

	for (i = 0; i < ntrain; i++)
	{
		double		v = t->x[rows[i] * t->k + f];

		if (!isnan(v))
			buf[m++] = v;
	}
	qsort(buf, m, sizeof(double), CmpDouble);
	/* distinct values, in place */
	for (i = 0; i < m; i++)
		if (d == 0 || buf[i] != buf[d - 1])
			buf[d++] = buf[i];
	thr = (double *) palloc(sizeof(double) * t->p.max_bins);
	nb = 0;
	if (d <= t->p.max_bins)
	{
		for (i = 0; i + 1 < d; i++)
			thr[nb++] = buf[i] + (buf[i + 1] - buf[i]) / 2;
	}
	else
	{
		/* quantiles of the distinct values' rows: recount with multiplicity */
		int64		j = 0;

		m = 0;
		for (i = 0; i < ntrain; i++)
		{
			double		v = t->x[rows[i] * t->k + f];

			if (!isnan(v))
				buf[m++] = v;
		}
		qsort(buf, m, sizeof(double), CmpDouble);
		for (b = 1; b < t->p.max_bins; b++)
		{
			double		q;

			j = (int64) ((double) b * m / t->p.max_bins);
			if (j >= m - 1)
				break;
			q = buf[j];
			/* the cut lies between q and the next larger value */
			if (q >= buf[m - 1])
				break;
			if (nb == 0 || q > thr[nb - 1])
				thr[nb++] = q;
		}
	}
	t->thr[f] = thr;
	t->nbins[f] = nb + 1;
	for (i = 0; i < t->n; i++)
	{
		double		v = t->x[i * t->k + f];
		int			lo = 0,
					hi = nb;

		if (isnan(v))
		{
			t->bins[(int64) f * t->n + i] = GBDT_MISSING_BIN;
			continue;
		}
		/* first b with v <= thr[b], nb when none */
		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;

			if (v <= thr[mid])
				hi = mid;
			else
				lo = mid + 1;
		}
		t->bins[(int64) f * t->n + i] = (uint8) lo;
	}
}

static void
BuildHist(Trainer *t, HistBin *hist, const int64 *rows, int64 m)
{
	int			f;
	int64		i;

	memset(hist, 0, sizeof(HistBin) * t->hsize);
	for (f = 0; f < t->k; f++)
	{
		const uint8 *col = t->bins + (int64) f * t->n;
		HistBin    *hf = hist + t->hoff[f];
		int			mb = t->nbins[f];

		for (i = 0; i < m; i++)
		{
			int64		r = rows[i];
			int			b = col[r];
			HistBin    *e = hf + (b == GBDT_MISSING_BIN ? mb : b);

			e->g += t->g[r];
			e->h += t->h[r];
			e->c += 1;
		}
		if ((f & 15) == 15)
			CHECK_FOR_INTERRUPTS();
	}
}

static int
TreeNode(Tree *tr, double cover)
{
	if (tr->n >= tr->cap)
	{
		tr->cap *= 2;
		tr->feature = repalloc(tr->feature, sizeof(int) * tr->cap);
		tr->threshold = repalloc(tr->threshold, sizeof(double) * tr->cap);
		tr->missing_left = repalloc(tr->missing_left, sizeof(bool) * tr->cap);
		tr->left = repalloc(tr->left, sizeof(int) * tr->cap);
		tr->right = repalloc(tr->right, sizeof(int) * tr->cap);
		tr->value = repalloc(tr->value, sizeof(double) * tr->cap);
		tr->cover = repalloc(tr->cover, sizeof(double) * tr->cap);
	}
	tr->feature[tr->n] = -1;
	tr->threshold[tr->n] = 0;
	tr->missing_left[tr->n] = false;
	tr->left[tr->n] = -1;
	tr->right[tr->n] = -1;
	tr->value[tr->n] = 0;
	tr->cover[tr->n] = cover;
	return tr->n++;
}

static inline double
Score(double g, double h, double l2)
{
	return g * g / (h + l2);
}

/* The best split of a node, or f = -1 when none gains. */
typedef struct Split
{
	int			f;
	int			b;
	bool		ml;
	double		gain;
	double		G;
	double		H;
} Split;

static void
FindSplit(Trainer *t, const HistBin *hist, int64 m, int depth, Split *sp)
{
	const double l2 = t->p.l2;
	const int	msl = t->p.min_samples_leaf;
	double		G = 0,
				H = 0;
	int			b,
				f;

	/* totals from feature 0's histogram (every row is in exactly one of its slots) */
	for (b = 0; b <= t->nbins[0]; b++)
	{
		G += hist[t->hoff[0] + b].g;
		H += hist[t->hoff[0] + b].h;
	}
	sp->f = -1;
	sp->b = -1;
	sp->ml = false;
	sp->gain = 0;
	sp->G = G;
	sp->H = H;
	if (depth >= t->p.max_depth || m < 2 * (int64) msl)
		return;
	{
		double		parent = Score(G, H, l2);

		for (f = 0; f < t->k; f++)
		{
			const HistBin *hf = hist + t->hoff[f];
			int			nb = t->nbins[f];
			HistBin		miss = hf[nb];
			double		gl = 0,
						hl = 0,
						cl = 0;

			for (b = 0; b + 1 < nb; b++)
			{
				int			side;

				gl += hf[b].g;
				hl += hf[b].h;
				cl += hf[b].c;
				/* side 0: missing go right, side 1: missing go left */
				for (side = 0; side < (miss.c > 0 ? 2 : 1); side++)
				{
					double		GL = gl + (side ? miss.g : 0),
								HL = hl + (side ? miss.h : 0),
								CL = cl + (side ? miss.c : 0);
					double		GR = G - GL,
								HR = H - HL,
								CR = (double) m - CL;
					double		gain;

					if (CL < msl || CR < msl || HL < 1e-3 || HR < 1e-3)
						continue;
					gain = Score(GL, HL, l2) + Score(GR, HR, l2) - parent;
					if (gain > sp->gain + 1e-12)
					{
						sp->gain = gain;
						sp->f = f;
						sp->b = b;
						/* no missing value seen: they go to the larger side */
						sp->ml = miss.c > 0 ? side == 1 : CL >= CR;
					}
				}
			}
		}
	}
}

/* Partition rows[0..m) by a split, left first, order kept; returns the rows going left. */
static int64
Partition(Trainer *t, int64 *rows, int64 m, const Split *sp)
{
	const uint8 *col = t->bins + (int64) sp->f * t->n;
	int64		nl = 0,
				nr = 0,
				i;

	for (i = 0; i < m; i++)
	{
		int			v = col[rows[i]];
		bool		goleft = v == GBDT_MISSING_BIN ? sp->ml : v <= sp->b;

		if (goleft)
			rows[nl++] = rows[i];
		else
			t->tmp[nr++] = rows[i];
	}
	memcpy(rows + nl, t->tmp, sizeof(int64) * nr);
	return nl;
}

static void
MakeLeaf(Trainer *t, Tree *tr, int node, const int64 *rows, int64 m, const Split *sp)
{
	int64		i;

	tr->value[node] = -t->p.learning_rate * sp->G / (sp->H + t->p.l2);
	for (i = 0; i < m; i++)
		t->raw[rows[i]] += tr->value[node];
}

/* Make node a split; builds the smaller child's histogram into small and the larger one's into large. */
static void
SplitNode(Trainer *t, Tree *tr, int node, const int64 *rows, int64 nl, int64 nr, const Split *sp,
		  const HistBin *hist, HistBin *small, HistBin *large, int *l, int *r)
{
	bool		left_small = nl <= nr;
	int			b;

	tr->feature[node] = sp->f;
	tr->threshold[node] = t->thr[sp->f][sp->b];
	tr->missing_left[node] = sp->ml;
	tr->value[node] = -t->p.learning_rate * sp->G / (sp->H + t->p.l2);
	*l = TreeNode(tr, (double) nl);
	*r = TreeNode(tr, (double) nr);
	tr->left[node] = *l;
	tr->right[node] = *r;
	BuildHist(t, small, left_small ? rows : rows + nl, left_small ? nl : nr);
	/* large may be hist itself: element by element, parent minus small */
	for (b = 0; b < t->hsize; b++)
	{
		large[b].g = hist[b].g - small[b].g;
		large[b].h = hist[b].h - small[b].h;
		large[b].c = hist[b].c - small[b].c;
	}
}

/* Depth-wise: grow node `node` over rows[0..m) whose histogram is hist, recursively. */
static void
GrowNode(Trainer *t, Tree *tr, int node, int64 *rows, int64 m, HistBin *hist, int depth)
{
	Split		sp;
	int64		nl;
	int			l,
				r;
	HistBin    *small,
			   *large;

	CHECK_FOR_INTERRUPTS();
	FindSplit(t, hist, m, depth, &sp);
	if (sp.f < 0)
	{
		MakeLeaf(t, tr, node, rows, m, &sp);
		return;
	}
	nl = Partition(t, rows, m, &sp);
	small = t->hist[2 * (depth + 1)];
	large = t->hist[2 * (depth + 1) + 1];
	SplitNode(t, tr, node, rows, nl, m - nl, &sp, hist, small, large, &l, &r);
	/* each subtree writes only the slots of deeper levels: both children's histograms survive */
	if (nl <= m - nl)
	{
		GrowNode(t, tr, l, rows, nl, small, depth + 1);
		GrowNode(t, tr, r, rows + nl, m - nl, large, depth + 1);
	}
	else
	{
		GrowNode(t, tr, l, rows, nl, large, depth + 1);
		GrowNode(t, tr, r, rows + nl, m - nl, small, depth + 1);
	}
}

/*
 * Leaf-wise (max_leaf_nodes set): split the leaf of largest gain first, until
 * max_leaf_nodes leaves (scikit-learn's and LightGBM's growth).  Each open
 * leaf keeps its histogram: at most max_leaf_nodes of them are alive.
 */
typedef struct OpenLeaf
{
	int			node;
	int64		start;
	int64		m;
	int			depth;
	HistBin    *hist;
	Split		sp;
} OpenLeaf;

static void
GrowLeafwise(Trainer *t, Tree *tr, int64 *rows, int64 m, HistBin *root_hist)
{
	int			maxl = t->p.max_leaf_nodes;
	OpenLeaf   *open = (OpenLeaf *) palloc(sizeof(OpenLeaf) * (maxl + 1));
	HistBin   **pool = t->pool;
	int			npool = 0,
				nopen = 1,
				i;

	/* pool holds maxl free histograms; the root's is extra */
	for (i = 0; i < maxl; i++)
		pool[npool++] = t->hist_leafwise[i];
	open[0].node = 0;
	open[0].start = 0;
	open[0].m = m;
	open[0].depth = 0;
	open[0].hist = root_hist;
	FindSplit(t, root_hist, m, 0, &open[0].sp);
	while (nopen < maxl)
	{
		int			best = -1;
		OpenLeaf	o;
		int64		nl;
		int			l,
					r;
		HistBin    *small;

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i < nopen; i++)
			if (open[i].sp.f >= 0 && (best < 0 || open[i].sp.gain > open[best].sp.gain))
				best = i;
		if (best < 0)
			break;
		o = open[best];
		nl = Partition(t, rows + o.start, o.m, &o.sp);
		small = pool[--npool];
		/* the parent's histogram becomes the larger child's */
		SplitNode(t, tr, o.node, rows + o.start, nl, o.m - nl, &o.sp, o.hist, small, o.hist, &l, &r);
		open[best].node = l;
		open[best].start = o.start;
		open[best].m = nl;
		open[best].depth = o.depth + 1;
		open[best].hist = nl <= o.m - nl ? small : o.hist;
		FindSplit(t, open[best].hist, nl, o.depth + 1, &open[best].sp);
		open[nopen].node = r;
		open[nopen].start = o.start + nl;
		open[nopen].m = o.m - nl;
		open[nopen].depth = o.depth + 1;
		open[nopen].hist = nl <= o.m - nl ? o.hist : small;
		FindSplit(t, open[nopen].hist, o.m - nl, o.depth + 1, &open[nopen].sp);
		nopen++;
	}
	for (i = 0; i < nopen; i++)
		MakeLeaf(t, tr, open[i].node, rows + open[i].start, open[i].m, &open[i].sp);
	pfree(open);
}

/* ---------------------------------------------------------------------------
 * Model, parsed
 * ------------------------------------------------------------------------- */

typedef struct GbdtNode
{
	int32		feature;		/* -1: leaf */
	int32		left;
	int32		right;
	bool		missing_left;
	double		threshold;
	double		value;
	double		cover;
} GbdtNode;

typedef struct GbdtModel
{
	Size		len;			/* of the raw argument */
	const void *addr;			/* where the argument was */
	char		fingerprint[17];
	int			k;
	int			ntrees;
	int			maxdepth;
	double		base_score;
	double		baseline;		/* base value: base_score + expected value of every tree */
	int		   *root;			/* per tree, its first node in nodes[] */
	GbdtNode   *nodes;
	char		bytes[FLEXIBLE_ARRAY_MEMBER];	/* the raw argument, for small ones */
} GbdtModel;

/* 64-bit FNV-1a over the model's numbers: the key a cached model is recognised by. */
static uint64
Fnv(uint64 h, const void *p, Size n)
{
	const unsigned char *c = (const unsigned char *) p;
	Size		i;

	for (i = 0; i < n; i++)
	{
		h ^= c[i];
		h *= UINT64CONST(0x100000001b3);
	}
	return h;
}

static void
Fingerprint(int k, double base, int ntrees, const int *root, const int *size, const GbdtNode *nodes, char *out)
{
	uint64		h = UINT64CONST(0xcbf29ce484222325);
	int			t,
				i;

	h = Fnv(h, &k, sizeof(k));
	h = Fnv(h, &base, sizeof(base));
	for (t = 0; t < ntrees; t++)
	{
		h = Fnv(h, &size[t], sizeof(int));
		for (i = 0; i < size[t]; i++)
		{
			const GbdtNode *nd = nodes + root[t] + i;
			uint8		ml = nd->missing_left ? 1 : 0;

			h = Fnv(h, &nd->feature, sizeof(int32));
			h = Fnv(h, &nd->left, sizeof(int32));
			h = Fnv(h, &nd->right, sizeof(int32));
			h = Fnv(h, &ml, 1);
			if (nd->feature >= 0)
				h = Fnv(h, &nd->threshold, sizeof(double));
			else
				h = Fnv(h, &nd->value, sizeof(double));
			h = Fnv(h, &nd->cover, sizeof(double));
		}
	}
	snprintf(out, 17, "%016llx", (unsigned long long) h);
}

/* The cover-weighted mean leaf of a tree (node indices relative to its root). */
static double
TreeExpectation(const GbdtNode *nd, int n)
{
	double		s = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (nd[i].feature < 0)
			s += nd[i].value * (nd[i].cover / nd[0].cover);
	return s;
}

/* One array of a tree: which = 0 feature, 1 threshold, 2 missing_left, 3 left, 4 right, 5 value, 6 cover. */
static void
PushTreeArray(JsonbParseState **ps, const char *key, const GbdtNode *nd, int n, int which)
{
	int			i;

	PushKey(ps, key);
	pushJsonbValue(ps, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; i < n; i++)
	{
		JsonbValue	v;

		switch (which)
		{
			case 0:
				PushNumber(ps, WJB_ELEM, int64_to_numeric(nd[i].feature));
				break;
			case 1:
				PushNumber(ps, WJB_ELEM, EcrmFloat8Numeric(nd[i].threshold));
				break;
			case 2:
				v.type = jbvBool;
				v.val.boolean = nd[i].missing_left;
				pushJsonbValue(ps, WJB_ELEM, &v);
				break;
			case 3:
				PushNumber(ps, WJB_ELEM, int64_to_numeric(nd[i].left));
				break;
			case 4:
				PushNumber(ps, WJB_ELEM, int64_to_numeric(nd[i].right));
				break;
			case 5:
				PushNumber(ps, WJB_ELEM, EcrmFloat8Numeric(nd[i].value));
				break;
			default:
				PushNumber(ps, WJB_ELEM, EcrmFloat8Numeric(nd[i].cover));
				break;
		}
	}
	pushJsonbValue(ps, WJB_END_ARRAY, NULL);
}

static inline double
Sigmoid(double z)
{
	if (z >= 0)
		return 1.0 / (1.0 + exp(-z));
	else
	{
		double		e = exp(z);

		return e / (1.0 + e);
	}
}

static inline double
LogLoss(double raw, int y)
{
	/* log(1 + exp(-z)) for y = 1, log(1 + exp(z)) for y = 0, without overflow */
	double		z = y ? raw : -raw;

	return z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
}

static inline int
Walk(const GbdtNode *nd, const double *x)
{
	int			i = 0;

	while (nd[i].feature >= 0)
	{
		double		v = x[nd[i].feature];

		if (isnan(v))
			i = nd[i].missing_left ? nd[i].left : nd[i].right;
		else
			i = v <= nd[i].threshold ? nd[i].left : nd[i].right;
	}
	return i;
}

/* Final: bin, boost, return the model as jsonb. */
PG_FUNCTION_INFO_V1(ecrm_gbdt_train_final);
Datum
ecrm_gbdt_train_final(PG_FUNCTION_ARGS)
{
	GbdtState  *st;
	Trainer		t;
	MemoryContext scratch;
	MemoryContext old;
	int64		i,
				ntrain = 0,
				nval = 0,
				pos = 0,
				pos_train = 0;
	int64	   *val;
	int			f,
				it,
				best_iter = 0,
				ntrees = 0,
				total_nodes = 0;
	double		best_loss = get_float8_infinity(),
				last_loss = get_float8_nan(),
				base;
	bool		stopped = false;
	Tree	   *trees;
	double	   *buf;
	GbdtNode   *nodes;
	int		   *root,
			   *size;
	char		fp[17];
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	Jsonb	   *out;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "ecrm_gbdt_train_final called in non-aggregate context");
	st = PG_ARGISNULL(0) ? NULL : (GbdtState *) PG_GETARG_POINTER(0);
	if (st == NULL || st->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no training rows"),
				 errdetail("gbdt_train received no row.")));
	for (i = 0; i < st->n; i++)
		pos += st->y[i];
	if (pos == 0 || pos == st->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("all " INT64_FORMAT " training rows have label %s", st->n, pos ? "true" : "false"),
				 errdetail("A binary classifier needs rows of both classes.")));

	memset(&t, 0, sizeof(t));
	ReadParams(st->params, &t.p);
	scratch = AllocSetContextCreate(CurrentMemoryContext, "ecrm gbdt training", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(scratch);
	t.n = st->n;
	t.k = st->k;
	t.x = st->x;
	t.y = st->y;

	/* the validation rows: a seeded hash of the row number decides */
	t.rows = (int64 *) palloc(sizeof(int64) * t.n);
	t.tmp = (int64 *) palloc(sizeof(int64) * t.n);
	val = (int64 *) palloc(sizeof(int64) * t.n);
	for (i = 0; i < t.n; i++)
	{
		double		u = (double) (SplitMix((uint64) t.p.seed * UINT64CONST(0x9E3779B97F4A7C15) ^ (uint64) i) >> 11) *
			(1.0 / 9007199254740992.0);

		if (u < t.p.validation_fraction)
			val[nval++] = i;
		else
		{
			t.rows[ntrain++] = i;
			pos_train += t.y[i];
		}
	}
	if (pos_train == 0 || pos_train == ntrain)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the training part has rows of one class only"),
				 errdetail("Of " INT64_FORMAT " rows, " INT64_FORMAT " went to validation and the other " INT64_FORMAT " all have label %s.",
						   t.n, nval, ntrain, pos_train ? "true" : "false"),
				 errhint("Lower validation_fraction, or train on more rows.")));

	/* bins */
	t.bins = (uint8 *) palloc(mul_size(t.n, t.k));
	t.nbins = (int *) palloc(sizeof(int) * t.k);
	t.hoff = (int *) palloc(sizeof(int) * t.k);
	t.thr = (double **) palloc(sizeof(double *) * t.k);
	buf = (double *) palloc(sizeof(double) * ntrain);
	t.hsize = 0;
	for (f = 0; f < t.k; f++)
	{
		CHECK_FOR_INTERRUPTS();
		BinFeature(&t, f, t.rows, ntrain, buf);
		t.hoff[f] = t.hsize;
		t.hsize += t.nbins[f] + 1;
	}
	pfree(buf);
	t.hist = (HistBin **) palloc(sizeof(HistBin *) * 2 * (t.p.max_depth + 1));
	for (i = 0; i < 2 * (t.p.max_depth + 1); i++)
		t.hist[i] = (HistBin *) palloc(mul_size(sizeof(HistBin), t.hsize));
	if (t.p.max_leaf_nodes > 0)
	{
		if (mul_size(mul_size(sizeof(HistBin), t.hsize), t.p.max_leaf_nodes) > (Size) 1024 * 1024 * 1024)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("max_leaf_nodes %d needs more than 1 GB of histograms for %d bins", t.p.max_leaf_nodes, t.hsize),
					 errdetail("Leaf-wise growth keeps one histogram per open leaf."),
					 errhint("Lower max_leaf_nodes or max_bins.")));
		t.hist_leafwise = (HistBin **) palloc(sizeof(HistBin *) * t.p.max_leaf_nodes);
		t.pool = (HistBin **) palloc(sizeof(HistBin *) * t.p.max_leaf_nodes);
		for (i = 0; i < t.p.max_leaf_nodes; i++)
			t.hist_leafwise[i] = (HistBin *) palloc(mul_size(sizeof(HistBin), t.hsize));
	}
	t.g = (double *) palloc0(sizeof(double) * t.n);
	t.h = (double *) palloc0(sizeof(double) * t.n);
	t.raw = (double *) palloc(sizeof(double) * t.n);
	base = log((double) pos_train / (double) (ntrain - pos_train));
	for (i = 0; i < t.n; i++)
		t.raw[i] = base;

	trees = (Tree *) palloc0(sizeof(Tree) * t.p.max_iter);
	for (it = 0; it < t.p.max_iter; it++)
	{
		Tree	   *tr = &trees[it];

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i < ntrain; i++)
		{
			int64		r = t.rows[i];
			double		p = Sigmoid(t.raw[r]);

			t.g[r] = p - t.y[r];
			t.h[r] = Max(p * (1 - p), 1e-16);
		}
		tr->cap = 64;
		tr->feature = palloc(sizeof(int) * tr->cap);
		tr->threshold = palloc(sizeof(double) * tr->cap);
		tr->missing_left = palloc(sizeof(bool) * tr->cap);
		tr->left = palloc(sizeof(int) * tr->cap);
		tr->right = palloc(sizeof(int) * tr->cap);
		tr->value = palloc(sizeof(double) * tr->cap);
		tr->cover = palloc(sizeof(double) * tr->cap);
		TreeNode(tr, (double) ntrain);
		BuildHist(&t, t.hist[0], t.rows, ntrain);
		if (t.p.max_leaf_nodes > 0)
			GrowLeafwise(&t, tr, t.rows, ntrain, t.hist[0]);
		else
			GrowNode(&t, tr, 0, t.rows, ntrain, t.hist[0], 0);
		ntrees = it + 1;

		if (nval > 0)
		{
			double		loss = 0;
			GbdtNode   *nd = (GbdtNode *) palloc(sizeof(GbdtNode) * tr->n);
			int			j;

			for (j = 0; j < tr->n; j++)
			{
				nd[j].feature = tr->feature[j];
				nd[j].left = tr->left[j];
				nd[j].right = tr->right[j];
				nd[j].missing_left = tr->missing_left[j];
				nd[j].threshold = tr->threshold[j];
				nd[j].value = tr->value[j];
			}
			for (i = 0; i < nval; i++)
			{
				int64		r = val[i];

				t.raw[r] += nd[Walk(nd, t.x + r * t.k)].value;
				loss += LogLoss(t.raw[r], t.y[r]);
			}
			pfree(nd);
			last_loss = loss / nval;
			if (last_loss < best_loss - t.p.tol)
			{
				best_loss = last_loss;
				best_iter = it + 1;
			}
			else if (it + 1 - best_iter >= t.p.n_iter_no_change)
			{
				stopped = true;
				break;
			}
		}
		else
			best_iter = it + 1;
	}

	/* the trees up to the best round, flattened */
	root = (int *) palloc(sizeof(int) * best_iter);
	size = (int *) palloc(sizeof(int) * best_iter);
	for (it = 0; it < best_iter; it++)
	{
		root[it] = total_nodes;
		size[it] = trees[it].n;
		total_nodes += trees[it].n;
	}
	nodes = (GbdtNode *) palloc(sizeof(GbdtNode) * Max(total_nodes, 1));
	for (it = 0; it < best_iter; it++)
	{
		Tree	   *tr = &trees[it];
		int			j;

		for (j = 0; j < tr->n; j++)
		{
			GbdtNode   *nd = nodes + root[it] + j;

			nd->feature = tr->feature[j];
			nd->left = tr->left[j];
			nd->right = tr->right[j];
			nd->missing_left = tr->feature[j] >= 0 ? tr->missing_left[j] : false;
			nd->threshold = tr->feature[j] >= 0 ? tr->threshold[j] : 0;
			nd->value = tr->feature[j] >= 0 ? 0 : tr->value[j];
			nd->cover = tr->cover[j];
		}
	}
	Fingerprint(t.k, base, best_iter, root, size, nodes, fp);
	{
		double		baseline = base;

		for (it = 0; it < best_iter; it++)
			baseline += TreeExpectation(nodes + root[it], size[it]);

		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		PushKeyString(&ps, "type", "gradient_boosted_trees");
		PushKeyInt(&ps, "format", GBDT_FORMAT);
		PushKeyInt(&ps, "features", t.k);
		PushKeyString(&ps, "fingerprint", fp);
		PushKeyFloat(&ps, "base_score", base);
		PushKeyFloat(&ps, "baseline_logit", baseline);
		PushKey(&ps, "params");
		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		PushKeyFloat(&ps, "learning_rate", t.p.learning_rate);
		PushKeyInt(&ps, "max_depth", t.p.max_depth);
		if (t.p.max_leaf_nodes > 0)
			PushKeyInt(&ps, "max_leaf_nodes", t.p.max_leaf_nodes);
		PushKeyInt(&ps, "max_iter", t.p.max_iter);
		PushKeyInt(&ps, "min_samples_leaf", t.p.min_samples_leaf);
		PushKeyFloat(&ps, "l2", t.p.l2);
		PushKeyInt(&ps, "max_bins", t.p.max_bins);
		PushKeyFloat(&ps, "validation_fraction", t.p.validation_fraction);
		PushKeyInt(&ps, "n_iter_no_change", t.p.n_iter_no_change);
		PushKeyFloat(&ps, "tol", t.p.tol);
		PushKeyInt(&ps, "seed", t.p.seed);
		pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		PushKeyInt(&ps, "rows", ntrain);
		PushKeyInt(&ps, "positives", pos_train);
		PushKeyInt(&ps, "validation_rows", nval);
		PushKeyInt(&ps, "iterations", ntrees);
		PushKeyInt(&ps, "best_iteration", best_iter);
		PushKeyBool(&ps, "early_stopped", stopped);
		if (nval > 0)
		{
			PushKeyFloat(&ps, "validation_log_loss", best_loss);
			PushKeyFloat(&ps, "last_validation_log_loss", last_loss);
		}
		PushKeyInt(&ps, "nodes", total_nodes);
		PushKey(&ps, "trees");
		pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
		for (it = 0; it < best_iter; it++)
		{
			GbdtNode   *nd = nodes + root[it];

			CHECK_FOR_INTERRUPTS();
			pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
			PushTreeArray(&ps, "feature", nd, size[it], 0);
			PushTreeArray(&ps, "threshold", nd, size[it], 1);
			PushTreeArray(&ps, "missing_left", nd, size[it], 2);
			PushTreeArray(&ps, "left", nd, size[it], 3);
			PushTreeArray(&ps, "right", nd, size[it], 4);
			PushTreeArray(&ps, "value", nd, size[it], 5);
			PushTreeArray(&ps, "cover", nd, size[it], 6);
			pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
		}
		pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
		res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	}
	MemoryContextSwitchTo(old);
	out = JsonbValueToJsonb(res);
	MemoryContextDelete(scratch);
	PG_RETURN_JSONB_P(out);
}

/* ---------------------------------------------------------------------------
 * Reading a model
 * ------------------------------------------------------------------------- */

static void
ModelError(const char *detail, int tree, int node)
{
	if (tree < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid gradient-boosted trees model"),
				 errdetail("%s", detail)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid gradient-boosted trees model: tree %d, node %d", tree + 1, node),
			 errdetail("%s", detail)));
}

static double
ModelNumber(JsonbValue *v, const char *detail, int tree, int node)
{
	double		d;

	if (v == NULL || v->type != jbvNumeric || !EcrmJsonbFloat8(v, &d))
		ModelError(detail, tree, node);
	return d;
}

static int
ModelInt(JsonbValue *v, const char *detail, int tree, int node, int lo, int hi)
{
	double		d = ModelNumber(v, detail, tree, node);

	if (d != floor(d) || d < lo || d > hi)
		ModelError(detail, tree, node);
	return (int) d;
}

/* Tree arrays by key, each of n elements. */
static JsonbContainer *
TreeArray(JsonbContainer *tree, const char *key, int *n, int t)
{
	JsonbValue *v = EcrmJsonbKey(tree, key);
	int			len;

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ModelError(psprintf("A tree needs an array \"%s\".", key), t, 0);
	len = JsonContainerSize(v->val.binary.data);
	if (*n < 0)
		*n = len;
	else if (len != *n)
		ModelError(psprintf("Array \"%s\" has %d elements, \"feature\" has %d.", key, len, *n), t, 0);
	return v->val.binary.data;
}

static GbdtModel *
ReadModel(Jsonb *jb, Size len, bool keep_bytes, struct varlena *raw)
{
	JsonbContainer *c = &jb->root;
	JsonbValue *v;
	JsonbContainer *tc;
	GbdtModel  *m;
	int			t,
				total = 0;
	char		fp[17];
	int		   *size;
	int		   *depth;
	int		   *parents;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ModelError("A model is the jsonb object that ecrm.gbdt_train returns.", -1, 0);
	v = EcrmJsonbKey(c, "type");
	if (v == NULL || v->type != jbvString || v->val.string.len != strlen("gradient_boosted_trees") ||
		memcmp(v->val.string.val, "gradient_boosted_trees", v->val.string.len) != 0)
		ModelError("A model is the jsonb object that ecrm.gbdt_train returns, with \"type\": \"gradient_boosted_trees\".", -1, 0);
	if (ModelInt(EcrmJsonbKey(c, "format"), "\"format\" must be 1.", -1, 0, 1, 1) != GBDT_FORMAT)
		ModelError("\"format\" must be 1.", -1, 0);
	m = (GbdtModel *) palloc0(offsetof(GbdtModel, bytes) + (keep_bytes ? len : 0));
	m->len = len;
	m->addr = raw;
	if (keep_bytes)
		memcpy(m->bytes, raw, len);
	m->k = ModelInt(EcrmJsonbKey(c, "features"), "\"features\" must be an integer between 1 and 1000.", -1, 0, 1, ECRM_MAX_FEATURES);
	m->base_score = ModelNumber(EcrmJsonbKey(c, "base_score"), "\"base_score\" must be a finite number.", -1, 0);
	v = EcrmJsonbKey(c, "trees");
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ModelError("\"trees\" must be an array.", -1, 0);
	tc = v->val.binary.data;
	m->ntrees = JsonContainerSize(tc);
	if (m->ntrees > 100000)
		ModelError("A model has at most 100000 trees.", -1, 0);
	m->root = (int *) palloc(sizeof(int) * (m->ntrees + 1));
	size = (int *) palloc(sizeof(int) * (m->ntrees + 1));
	/* sizes first, to allocate the nodes once */
	for (t = 0; t < m->ntrees; t++)
	{
		JsonbValue *tv = getIthJsonbValueFromContainer(tc, t);
		int			n = -1;

		if (tv == NULL || tv->type != jbvBinary || !JsonContainerIsObject(tv->val.binary.data))
			ModelError("A tree is a jsonb object.", t, 0);
		TreeArray(tv->val.binary.data, "feature", &n, t);
		if (n < 1 || n > GBDT_MAX_NODES - total)
			ModelError("A tree has at least one node, a model at most 10000000.", t, 0);
		m->root[t] = total;
		size[t] = n;
		total += n;
	}
	m->nodes = (GbdtNode *) palloc(sizeof(GbdtNode) * Max(total, 1));
	depth = (int *) palloc(sizeof(int) * Max(total, 1));
	parents = (int *) palloc0(sizeof(int) * Max(total, 1));
	for (t = 0; t < m->ntrees; t++)
	{
		JsonbContainer *tree = getIthJsonbValueFromContainer(tc, t)->val.binary.data;
		int			n = size[t];
		JsonbContainer *af = TreeArray(tree, "feature", &n, t),
				   *at = TreeArray(tree, "threshold", &n, t),
				   *am = TreeArray(tree, "missing_left", &n, t),
				   *al = TreeArray(tree, "left", &n, t),
				   *ar = TreeArray(tree, "right", &n, t),
				   *av = TreeArray(tree, "value", &n, t),
				   *ac = TreeArray(tree, "cover", &n, t);
		GbdtNode   *nd = m->nodes + m->root[t];
		int		   *dep = depth + m->root[t];
		int		   *par = parents + m->root[t];
		int			i;

		CHECK_FOR_INTERRUPTS();
		dep[0] = 0;
		for (i = 0; i < n; i++)
		{
			JsonbValue *b;

			nd[i].feature = ModelInt(getIthJsonbValueFromContainer(af, i), "\"feature\" must be -1 (a leaf) or a feature number from 0.", t, i, -1, m->k - 1);
			nd[i].cover = ModelNumber(getIthJsonbValueFromContainer(ac, i), "\"cover\" must be a positive number.", t, i);
			if (!(nd[i].cover > 0))
				ModelError("\"cover\" must be a positive number.", t, i);
			if (nd[i].feature >= 0)
			{
				nd[i].threshold = ModelNumber(getIthJsonbValueFromContainer(at, i), "\"threshold\" must be a finite number.", t, i);
				b = getIthJsonbValueFromContainer(am, i);
				if (b == NULL || b->type != jbvBool)
					ModelError("\"missing_left\" must be true or false.", t, i);
				nd[i].missing_left = b->val.boolean;
				/* children after their parent, each with one parent: a tree, walked in finite steps */
				nd[i].left = ModelInt(getIthJsonbValueFromContainer(al, i), "\"left\" must be a later node of the tree.", t, i, i + 1, n - 1);
				nd[i].right = ModelInt(getIthJsonbValueFromContainer(ar, i), "\"right\" must be a later node of the tree.", t, i, i + 1, n - 1);
				nd[i].value = 0;
				if (nd[i].left == nd[i].right || par[nd[i].left]++ > 0 || par[nd[i].right]++ > 0)
					ModelError("Every node but the root has exactly one parent.", t, i);
				dep[nd[i].left] = dep[nd[i].right] = dep[i] + 1;
				if (dep[i] + 1 > GBDT_MAX_TREE_DEPTH)
					ModelError("A tree is at most 64 levels deep.", t, i);
				if (dep[i] + 1 > m->maxdepth)
					m->maxdepth = dep[i] + 1;
			}
			else
			{
				nd[i].threshold = 0;
				nd[i].missing_left = false;
				nd[i].left = nd[i].right = -1;
				nd[i].value = ModelNumber(getIthJsonbValueFromContainer(av, i), "\"value\" of a leaf must be a finite number.", t, i);
			}
			if (i > 0 && par[i] == 0)
				ModelError("Every node but the root has exactly one parent.", t, i);
		}
	}
	Fingerprint(m->k, m->base_score, m->ntrees, m->root, size, m->nodes, fp);
	v = EcrmJsonbKey(c, "fingerprint");
	if (v != NULL && v->type == jbvString && v->val.string.len == 16)
	{
		if (memcmp(v->val.string.val, fp, 16) != 0)
			ModelError("Its \"fingerprint\" does not match its trees: the model was changed after training. Remove the fingerprint after an intended change.", -1, 0);
		memcpy(m->fingerprint, fp, 17);
	}
	else if (v != NULL)
		ModelError("\"fingerprint\" must be a string of 16 hexadecimal digits.", -1, 0);
	m->baseline = m->base_score;
	for (t = 0; t < m->ntrees; t++)
		m->baseline += TreeExpectation(m->nodes + m->root[t], size[t]);
	pfree(size);
	pfree(depth);
	pfree(parents);
	return m;
}

/*
 * The model of a jsonb argument, read once per query (fn_extra).  It is
 * recognised by the bytes as passed, before detoasting (a toast pointer, a
 * compressed or a small value); a large uncompressed value by its length and
 * fingerprint (checked against the trees when read), so scoring a million
 * rows does not compare the whole model a million times.
 */
#define GBDT_KEEP_BYTES 8192

static GbdtModel *
GetModel(FunctionCallInfo fcinfo, Datum arg)
{
	GbdtModel  *m = (GbdtModel *) fcinfo->flinfo->fn_extra;
	struct varlena *raw = (struct varlena *) DatumGetPointer(arg);
	Size		len = VARSIZE_ANY(raw);
	bool		keep = VARATT_IS_EXTENDED(raw) || len <= GBDT_KEEP_BYTES;
	MemoryContext old;
	MemoryContext cxt;
	Jsonb	   *jb;

	if (m != NULL && m->len == len)
	{
		if (keep)
		{
			if (m->addr != NULL && memcmp(m->bytes, raw, len) == 0)
				return m;
		}
		else if (m->fingerprint[0] != '\0' && m->addr == NULL)
		{
			JsonbValue *v = EcrmJsonbKey(&((Jsonb *) raw)->root, "fingerprint");

			if (v != NULL && v->type == jbvString && v->val.string.len == 16 &&
				memcmp(v->val.string.val, m->fingerprint, 16) == 0)
				return m;
		}
	}
	if (m != NULL)
	{
		MemoryContextDelete(GetMemoryChunkContext(m));
		fcinfo->flinfo->fn_extra = NULL;
	}
	jb = DatumGetJsonbP(arg);
	cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "ecrm gbdt model", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		m = ReadModel(jb, len, keep, raw);
		/* addr marks which key applies: non-NULL, the bytes; NULL, the fingerprint */
		m->addr = keep ? (const void *) m : NULL;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = m;
	return m;
}

static double
RawScore(const GbdtModel *m, const double *x)
{
	double		s = m->base_score;
	int			t;

	for (t = 0; t < m->ntrees; t++)
	{
		const GbdtNode *nd = m->nodes + m->root[t];

		s += nd[Walk(nd, x)].value;
	}
	return s;
}

/* The features argument as doubles (NaN = missing), in a buffer of the call. */
static double *
Features(FunctionCallInfo fcinfo, const GbdtModel *m, int argno)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(argno);
	double	   *x = (double *) palloc(sizeof(double) * m->k);

	ReadFeatures(a, x, m->k, "features");
	return x;
}

PG_FUNCTION_INFO_V1(ecrm_gbdt_predict);
Datum
ecrm_gbdt_predict(PG_FUNCTION_ARGS)
{
	GbdtModel  *m = GetModel(fcinfo, PG_GETARG_DATUM(0));
	double	   *x = Features(fcinfo, m, 1);
	double		p = Sigmoid(RawScore(m, x));

	pfree(x);
	PG_RETURN_FLOAT8(p);
}

PG_FUNCTION_INFO_V1(ecrm_gbdt_log_odds);
Datum
ecrm_gbdt_log_odds(PG_FUNCTION_ARGS)
{
	GbdtModel  *m = GetModel(fcinfo, PG_GETARG_DATUM(0));
	double	   *x = Features(fcinfo, m, 1);
	double		r = RawScore(m, x);

	pfree(x);
	PG_RETURN_FLOAT8(r);
}

/* ---------------------------------------------------------------------------
 * TreeSHAP (Lundberg, Erion, Lee 2018, algorithm 2)
 * ------------------------------------------------------------------------- */

typedef struct PathElement
{
	int			feature;
	double		zero_fraction;
	double		one_fraction;
	double		pweight;
} PathElement;

static void
ExtendPath(PathElement *path, int depth, double zero_fraction, double one_fraction, int feature)
{
	int			i;

	path[depth].feature = feature;
	path[depth].zero_fraction = zero_fraction;
	path[depth].one_fraction = one_fraction;
	path[depth].pweight = depth == 0 ? 1.0 : 0.0;
	for (i = depth - 1; i >= 0; i--)
	{
		path[i + 1].pweight += one_fraction * path[i].pweight * (i + 1) / (double) (depth + 1);
		path[i].pweight = zero_fraction * path[i].pweight * (depth - i) / (double) (depth + 1);
	}
}

static void
UnwindPath(PathElement *path, int depth, int index)
{
	double		one_fraction = path[index].one_fraction;
	double		zero_fraction = path[index].zero_fraction;
	double		next_one_portion = path[depth].pweight;
	int			i;

	for (i = depth - 1; i >= 0; i--)
	{
		if (one_fraction != 0)
		{
			double		tmp = path[i].pweight;

			path[i].pweight = next_one_portion * (depth + 1) / ((double) (i + 1) * one_fraction);
			next_one_portion = tmp - path[i].pweight * zero_fraction * (depth - i) / (double) (depth + 1);
		}
		else
			path[i].pweight = path[i].pweight * (depth + 1) / (zero_fraction * (depth - i));
	}
	for (i = index; i < depth; i++)
	{
		path[i].feature = path[i + 1].feature;
		path[i].zero_fraction = path[i + 1].zero_fraction;
		path[i].one_fraction = path[i + 1].one_fraction;
	}
}

static double
UnwoundPathSum(const PathElement *path, int depth, int index)
{
	double		one_fraction = path[index].one_fraction;
	double		zero_fraction = path[index].zero_fraction;
	double		next_one_portion = path[depth].pweight;
	double		total = 0;
	int			i;

	for (i = depth - 1; i >= 0; i--)
	{
		if (one_fraction != 0)
		{
			double		tmp = next_one_portion * (depth + 1) / ((double) (i + 1) * one_fraction);

			total += tmp;
			next_one_portion = path[i].pweight - tmp * zero_fraction * ((depth - i) / (double) (depth + 1));
		}
		else if (zero_fraction != 0)
			total += (path[i].pweight / zero_fraction) / ((depth - i) / (double) (depth + 1));
	}
	return total;
}

static void
TreeShap(const GbdtNode *nd, const double *x, double *phi, int node, int depth, PathElement *parent_path,
		 double parent_zero, double parent_one, int parent_feature)
{
	PathElement *path = parent_path + depth + 1;
	int			i;

	memcpy(path, parent_path, sizeof(PathElement) * (depth + 1));
	ExtendPath(path, depth, parent_zero, parent_one, parent_feature);
	if (nd[node].feature < 0)
	{
		for (i = 1; i <= depth; i++)
		{
			double		w = UnwoundPathSum(path, depth, i);

			phi[path[i].feature] += w * (path[i].one_fraction - path[i].zero_fraction) * nd[node].value;
		}
	}
	else
	{
		const GbdtNode *n = &nd[node];
		double		v = x[n->feature];
		bool		left = isnan(v) ? n->missing_left : v <= n->threshold;
		int			hot = left ? n->left : n->right;
		int			cold = left ? n->right : n->left;
		double		incoming_zero = 1,
					incoming_one = 1;
		int			k;

		for (k = 0; k <= depth; k++)
			if (path[k].feature == n->feature)
				break;
		if (k != depth + 1)
		{
			incoming_zero = path[k].zero_fraction;
			incoming_one = path[k].one_fraction;
			UnwindPath(path, depth, k);
			depth -= 1;
		}
		TreeShap(nd, x, phi, hot, depth + 1, path, nd[hot].cover / n->cover * incoming_zero, incoming_one, n->feature);
		TreeShap(nd, x, phi, cold, depth + 1, path, nd[cold].cover / n->cover * incoming_zero, 0, n->feature);
	}
}

static ArrayType *
Float8Array(const double *v, int n)
{
	Datum	   *d = (Datum *) palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

PG_FUNCTION_INFO_V1(ecrm_gbdt_explain);
Datum
ecrm_gbdt_explain(PG_FUNCTION_ARGS)
{
	GbdtModel  *m = GetModel(fcinfo, PG_GETARG_DATUM(0));
	double	   *x = Features(fcinfo, m, 1);
	double	   *phi = (double *) palloc0(sizeof(double) * m->k);
	int			d = m->maxdepth;
	PathElement *path = (PathElement *) palloc(sizeof(PathElement) * (d + 2) * (d + 3) / 2);
	int			t;

	/* the root's path element has feature -1 and is never credited */
	for (t = 0; t < m->ntrees; t++)
	{
		if ((t & 63) == 63)
			CHECK_FOR_INTERRUPTS();
		TreeShap(m->nodes + m->root[t], x, phi, 0, 0, path, 1, 1, -1);
	}
	PG_RETURN_ARRAYTYPE_P(Float8Array(phi, m->k));
}

PG_FUNCTION_INFO_V1(ecrm_gbdt_base_value);
Datum
ecrm_gbdt_base_value(PG_FUNCTION_ARGS)
{
	GbdtModel  *m = GetModel(fcinfo, PG_GETARG_DATUM(0));

	PG_RETURN_FLOAT8(m->baseline);
}

/* The cover-weighted expectation of a tree given the features in `known` (the rest averaged out). */
static double
CondExpect(const GbdtNode *nd, int i, const double *x, const bool *known)
{
	const GbdtNode *n = &nd[i];

	if (n->feature < 0)
		return n->value;
	if (known[n->feature])
	{
		double		v = x[n->feature];
		bool		left = isnan(v) ? n->missing_left : v <= n->threshold;

		return CondExpect(nd, left ? n->left : n->right, x, known);
	}
	return (nd[n->left].cover * CondExpect(nd, n->left, x, known) +
			nd[n->right].cover * CondExpect(nd, n->right, x, known)) / n->cover;
}

/* For tests: E[f(x) | the features in known], by cover-weighted traversal; brute-force Shapley values use it. */
PG_FUNCTION_INFO_V1(ecrm_gbdt_conditional_expectation);
Datum
ecrm_gbdt_conditional_expectation(PG_FUNCTION_ARGS)
{
	GbdtModel  *m = GetModel(fcinfo, PG_GETARG_DATUM(0));
	double	   *x = Features(fcinfo, m, 1);
	ArrayType  *ka = PG_GETARG_ARRAYTYPE_P(2);
	bool	   *known;
	Datum	   *kd;
	bool	   *kn;
	int			nk,
				i,
				t;
	double		s;

	deconstruct_array(ka, BOOLOID, 1, true, TYPALIGN_CHAR, &kd, &kn, &nk);
	if (nk != m->k)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("known has %d elements, the model has %d features", nk, m->k),
				 errdetail("known says for each feature whether it is in the coalition.")));
	known = (bool *) palloc(sizeof(bool) * m->k);
	for (i = 0; i < nk; i++)
		known[i] = !kn[i] && DatumGetBool(kd[i]);
	s = m->base_score;
	for (t = 0; t < m->ntrees; t++)
		s += CondExpect(m->nodes + m->root[t], 0, x, known);
	PG_RETURN_FLOAT8(s);
}
