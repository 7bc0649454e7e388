/*
 * evaluate.c — aggregates that say how good a score is: ROC AUC, log loss,
 * lift and calibration by decile.
 *
 * roc_auc and the decile aggregates keep (score, label) pairs (parallel:
 * combined by concatenation, serialised for workers) and sort them once at
 * the end; log_loss keeps a running sum in a float8[2] {rows, sum}.
 */
#include "postgres.h"

#include <math.h>

#include "ecrm.h"
#include "scoring.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

typedef struct ScoredRow
{
	double		score;
	bool		label;
} ScoredRow;

typedef struct PairState
{
	int64		n;
	int64		cap;
	ScoredRow  *rows;
} PairState;

static void
PairReserve(PairState *st, int64 more)
{
	int64		max = (MaxAllocSize - 1024) / sizeof(ScoredRow);
	int64		need = st->n + more;
	int64		cap;

	if (need <= st->cap)
		return;
	if (need > max)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many rows to evaluate: at most " INT64_FORMAT, max),
				 errhint("Evaluate on a sample (TABLESAMPLE).")));
	cap = Min(Max(Max(st->cap * 2, 1024), need), max);
	st->rows = st->rows ? repalloc(st->rows, cap * sizeof(ScoredRow)) : palloc(cap * sizeof(ScoredRow));
	st->cap = cap;
}

static void
CheckScore(double s, const char *what)
{
	if (isnan(s) || isinf(s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number, not %s", what,
						isnan(s) ? "NaN" : (s > 0 ? "Infinity" : "-Infinity"))));
}

/* Transition: keep one (score, label) pair; rows with a NULL are left out. */
PG_FUNCTION_INFO_V1(ecrm_scored_pairs_trans);
Datum
ecrm_scored_pairs_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	MemoryContext old;
	PairState  *st;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ecrm_scored_pairs_trans called in non-aggregate context");
	st = PG_ARGISNULL(0) ? MemoryContextAllocZero(aggcontext, sizeof(PairState))
		: (PairState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(st);
	CheckScore(PG_GETARG_FLOAT8(1), "score");
	old = MemoryContextSwitchTo(aggcontext);
	PairReserve(st, 1);
	MemoryContextSwitchTo(old);
	st->rows[st->n].score = PG_GETARG_FLOAT8(1);
	st->rows[st->n].label = PG_GETARG_BOOL(2);
	st->n++;
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(ecrm_scored_pairs_combine);
Datum
ecrm_scored_pairs_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	MemoryContext old;
	PairState  *a;
	PairState  *b;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ecrm_scored_pairs_combine called in non-aggregate context");
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	b = (PairState *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? MemoryContextAllocZero(aggcontext, sizeof(PairState))
		: (PairState *) PG_GETARG_POINTER(0);
	if (b->n > 0)
	{
		old = MemoryContextSwitchTo(aggcontext);
		PairReserve(a, b->n);
		MemoryContextSwitchTo(old);
		memcpy(a->rows + a->n, b->rows, b->n * sizeof(ScoredRow));
		a->n += b->n;
	}
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(ecrm_scored_pairs_serialize);
Datum
ecrm_scored_pairs_serialize(PG_FUNCTION_ARGS)
{
	PairState  *st = (PairState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	int64		i;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->n);
	for (i = 0; i < st->n; i++)
	{
		pq_sendfloat8(&buf, st->rows[i].score);
		pq_sendbyte(&buf, st->rows[i].label ? 1 : 0);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(ecrm_scored_pairs_deserialize);
Datum
ecrm_scored_pairs_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcontext;
	MemoryContext old;
	StringInfoData buf;
	PairState  *st;
	int64		n,
				i;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "ecrm_scored_pairs_deserialize called in non-aggregate context");
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	n = pq_getmsgint64(&buf);
	if (n < 0 || n > (int64) buf.len / 9)
		elog(ERROR, "invalid evaluation state");
	old = MemoryContextSwitchTo(aggcontext);
	st = palloc0(sizeof(PairState));
	PairReserve(st, Max(n, 1));
	for (i = 0; i < n; i++)
	{
		st->rows[i].score = pq_getmsgfloat8(&buf);
		st->rows[i].label = pq_getmsgbyte(&buf) != 0;
	}
	st->n = n;
	pq_getmsgend(&buf);
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(st);
}

/* Ascending score; among equal scores, false labels first (a fixed order for deciles). */
static int
CompareScoredRows(const void *a, const void *b)
{
	const ScoredRow *x = a;
	const ScoredRow *y = b;

	if (x->score < y->score)
		return -1;
	if (x->score > y->score)
		return 1;
	return (int) x->label - (int) y->label;
}

/* The pairs sorted, or NULL when there are none (the aggregate is then NULL). */
static PairState *
SortedPairs(FunctionCallInfo fcinfo)
{
	PairState  *st;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "evaluation final function called in non-aggregate context");
	if (PG_ARGISNULL(0))
		return NULL;
	st = (PairState *) PG_GETARG_POINTER(0);
	if (st->n == 0)
		return NULL;
	/* sorting in place is fine: the aggregates are FINALFUNC_MODIFY = READ_WRITE */
	qsort(st->rows, st->n, sizeof(ScoredRow), CompareScoredRows);
	return st;
}

/* Area under the ROC curve: the chance a random positive outscores a random negative (ties count half). */
PG_FUNCTION_INFO_V1(ecrm_roc_auc_final);
Datum
ecrm_roc_auc_final(PG_FUNCTION_ARGS)
{
	PairState  *st = SortedPairs(fcinfo);
	int64		i = 0,
				pos = 0,
				neg;
	double		rank_sum = 0.0;

	if (st == NULL)
		PG_RETURN_NULL();
	while (i < st->n)
	{
		int64		j = i,
					pos_here = 0;

		CHECK_FOR_INTERRUPTS();
		while (j < st->n && st->rows[j].score == st->rows[i].score)
			pos_here += st->rows[j++].label ? 1 : 0;
		/* ranks i+1 .. j share their mean */
		rank_sum += pos_here * ((double) (i + 1) + (double) j) / 2.0;
		pos += pos_here;
		i = j;
	}
	neg = st->n - pos;
	if (pos == 0 || neg == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ROC AUC is undefined when every label is %s", pos ? "true" : "false"),
				 errdetail("All " INT64_FORMAT " rows have the same label.", st->n)));
	PG_RETURN_FLOAT8((rank_sum - (double) pos * (pos + 1) / 2.0) / ((double) pos * (double) neg));
}

/* Tuple descriptor of the element type of the final function's array result. */
static TupleDesc
DecileTupleDesc(FunctionCallInfo fcinfo, Oid *elemtype, int natts)
{
	Oid			rettype = get_fn_expr_rettype(fcinfo->flinfo);
	TupleDesc	td;

	*elemtype = OidIsValid(rettype) ? get_element_type(rettype) : InvalidOid;
	if (!OidIsValid(*elemtype))
		elog(ERROR, "could not determine the result type of a decile aggregate");
	td = lookup_rowtype_tupdesc_copy(*elemtype, -1);
	if (td->natts != natts)
		elog(ERROR, "decile type has %d columns, expected %d", td->natts, natts);
	return BlessTupleDesc(td);
}

static Datum
MakeCompositeArray(Datum *elems, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(elems, n, elemtype, typlen, typbyval, typalign));
}

/* Rows, positives and score sums of ten equal-count bins, highest scores first. */
typedef struct Decile
{
	int64		rows;
	int64		positives;
	double		min_score;
	double		max_score;
	double		sum_score;
} Decile;

static int
Deciles(PairState *st, Decile *dec)
{
	int64		i;
	int			k;

	memset(dec, 0, 10 * sizeof(Decile));
	for (i = 0; i < st->n; i++)
	{
		/* i-th highest score; its bin by position */
		ScoredRow  *r = &st->rows[st->n - 1 - i];
		Decile	   *d = &dec[(int) ((i * 10) / st->n)];

		if (d->rows == 0)
			d->max_score = r->score;
		d->min_score = r->score;
		d->rows++;
		d->positives += r->label ? 1 : 0;
		d->sum_score += r->score;
	}
	for (k = 0; k < 10 && dec[k].rows > 0; k++)
		;
	return k;
}

/*
 * Lift table: per decile (1 = highest scores) its rows, positives, score
 * range, positive rate, lift over the overall rate, cumulative lift and the
 * share of all positives captured so far.
 */
PG_FUNCTION_INFO_V1(ecrm_lift_by_decile_final);
Datum
ecrm_lift_by_decile_final(PG_FUNCTION_ARGS)
{
	PairState  *st = SortedPairs(fcinfo);
	Decile		dec[10];
	Datum		elems[10];
	Oid			elemtype;
	TupleDesc	td;
	int			nd,
				k;
	int64		total_pos = 0,
				cum_rows = 0,
				cum_pos = 0;
	double		base;

	if (st == NULL)
		PG_RETURN_NULL();
	td = DecileTupleDesc(fcinfo, &elemtype, 9);
	nd = Deciles(st, dec);
	for (k = 0; k < nd; k++)
		total_pos += dec[k].positives;
	base = (double) total_pos / st->n;
	for (k = 0; k < nd; k++)
	{
		Datum		v[9];
		bool		nulls[9] = {false};
		double		rate = (double) dec[k].positives / dec[k].rows;

		cum_rows += dec[k].rows;
		cum_pos += dec[k].positives;
		v[0] = Int32GetDatum(k + 1);
		v[1] = Int64GetDatum(dec[k].rows);
		v[2] = Int64GetDatum(dec[k].positives);
		v[3] = Float8GetDatum(dec[k].min_score);
		v[4] = Float8GetDatum(dec[k].max_score);
		v[5] = Float8GetDatum(rate);
		/* with no positives at all, lift and capture are undefined */
		nulls[6] = nulls[7] = nulls[8] = (total_pos == 0);
		v[6] = Float8GetDatum(total_pos ? rate / base : 0);
		v[7] = Float8GetDatum(total_pos ? ((double) cum_pos / cum_rows) / base : 0);
		v[8] = Float8GetDatum(total_pos ? (double) cum_pos / total_pos : 0);
		elems[k] = HeapTupleGetDatum(heap_form_tuple(td, v, nulls));
	}
	PG_RETURN_DATUM(MakeCompositeArray(elems, nd, elemtype));
}

/*
 * Calibration table: per decile of predicted probability (1 = highest) the
 * mean prediction against the observed positive rate.
 */
PG_FUNCTION_INFO_V1(ecrm_calibration_by_decile_final);
Datum
ecrm_calibration_by_decile_final(PG_FUNCTION_ARGS)
{
	PairState  *st = SortedPairs(fcinfo);
	Decile		dec[10];
	Datum		elems[10];
	Oid			elemtype;
	TupleDesc	td;
	int			nd,
				k;

	if (st == NULL)
		PG_RETURN_NULL();
	if (st->rows[0].score < 0 || st->rows[st->n - 1].score > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calibration needs probabilities between 0 and 1, not %g",
						st->rows[0].score < 0 ? st->rows[0].score : st->rows[st->n - 1].score)));
	td = DecileTupleDesc(fcinfo, &elemtype, 5);
	nd = Deciles(st, dec);
	for (k = 0; k < nd; k++)
	{
		Datum		v[5];
		bool		nulls[5] = {false};
		double		mean = dec[k].sum_score / dec[k].rows;
		double		rate = (double) dec[k].positives / dec[k].rows;

		v[0] = Int32GetDatum(k + 1);
		v[1] = Int64GetDatum(dec[k].rows);
		v[2] = Float8GetDatum(mean);
		v[3] = Float8GetDatum(rate);
		v[4] = Float8GetDatum(rate - mean);
		elems[k] = HeapTupleGetDatum(heap_form_tuple(td, v, nulls));
	}
	PG_RETURN_DATUM(MakeCompositeArray(elems, nd, elemtype));
}

/* ---------------------------------------------------------------------------
 * Log loss: state float8[2] = {rows, sum of losses}
 * ------------------------------------------------------------------------- */

static double *
LogLossState(ArrayType *a)
{
	if (ARR_NDIM(a) != 1 || ARR_DIMS(a)[0] != 2 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid log_loss state"),
				 errdetail("The state is a float8[2] of {rows, sum of losses}.")));
	EcrmCheckFiniteArray((double *) EcrmArrayData(a), 2, "log_loss state");
	if (((double *) EcrmArrayData(a))[0] < 0 || ((double *) EcrmArrayData(a))[1] < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid log_loss state"),
				 errdetail("The state is a float8[2] of {rows, sum of losses}, neither negative.")));
	return (double *) EcrmArrayData(a);
}

/*
 * The state to update: in an aggregate the state array itself (as
 * float8_accum does), otherwise a copy, so a direct call changes nothing.
 */
static ArrayType *
LogLossWritable(FunctionCallInfo fcinfo, int argno)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(argno);

	LogLossState(a);
	return AggCheckCallContext(fcinfo, NULL) ? a : (ArrayType *) pg_detoast_datum_copy((struct varlena *) a);
}

PG_FUNCTION_INFO_V1(ecrm_log_loss_trans);
Datum
ecrm_log_loss_trans(PG_FUNCTION_ARGS)
{
	ArrayType  *a;
	double	   *s;
	double		p;
	const double eps = 1e-15;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("log_loss state must not be NULL")));
	a = LogLossWritable(fcinfo, 0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_ARRAYTYPE_P(a);
	p = PG_GETARG_FLOAT8(1);
	CheckScore(p, "probability");
	if (p < 0 || p > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("probability must be between 0 and 1, not %g", p)));
	/* clipped as scikit-learn does, so a confident mistake costs much but not infinity */
	p = Min(Max(p, eps), 1 - eps);
	s = LogLossState(a);
	s[0] += 1;
	s[1] += PG_GETARG_BOOL(2) ? -log(p) : -log1p(-p);
	PG_RETURN_ARRAYTYPE_P(a);
}

PG_FUNCTION_INFO_V1(ecrm_log_loss_combine);
Datum
ecrm_log_loss_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *a = LogLossWritable(fcinfo, 0);
	double	   *x = LogLossState(a);
	double	   *y = LogLossState(PG_GETARG_ARRAYTYPE_P(1));

	x[0] += y[0];
	x[1] += y[1];
	PG_RETURN_ARRAYTYPE_P(a);
}

PG_FUNCTION_INFO_V1(ecrm_log_loss_final);
Datum
ecrm_log_loss_final(PG_FUNCTION_ARGS)
{
	double	   *s = LogLossState(PG_GETARG_ARRAYTYPE_P(0));

	if (!(s[0] > 0))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(s[1] / s[0]);
}
