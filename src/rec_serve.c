/*
 * rec_serve.c — serving recommendations for a batch of customers: the part
 * every model shares.
 *
 * The SQL layer hands over the customers, their history as parallel arrays
 * (customer, product, weight, exclude), the products allowed (only) and
 * forbidden (never), and a popularity ranking.  Per customer the model scores
 * candidates from the history; here they are filtered (what the customer is
 * not to be offered again, never, only), the top k kept by a heap, the model
 * asked to explain them, and the list topped up from the popularity ranking
 * when the model found fewer than k (a customer without history gets
 * popularity only).  Rows: (customer_id, rank, product_id, score, because,
 * popular): because is NULL for a popularity fill-in, popular its position in
 * the popular list (NULL for the model's own candidates).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "ecrm.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "recommend.h"
#include "utils/array.h"

static void
CheckNoNulls(ArrayType *a, const char *name)
{
	if (array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain nulls", name)));
}

static int
ArrayLength(ArrayType *a)
{
	return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
}

void
EcrmCheckK(int32 k, int32 max, const char *what)
{
	if (k < 1 || k > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d, not %d", what, max, k)));
}

int
EcrmCompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* A copy of a bigint[] argument, sorted; NULL (n = -1) when the argument is NULL. */
static int64 *
SortedIdArg(FunctionCallInfo fcinfo, int arg, const char *name, int *n)
{
	ArrayType  *a;
	int64	   *ids;

	if (PG_ARGISNULL(arg))
	{
		*n = -1;
		return NULL;
	}
	a = PG_GETARG_ARRAYTYPE_P(arg);
	CheckNoNulls(a, name);
	*n = ArrayLength(a);
	ids = palloc(sizeof(int64) * Max(*n, 1));
	memcpy(ids, EcrmArrayData(a), sizeof(int64) * *n);
	qsort(ids, *n, sizeof(int64), EcrmCompareInt64);
	return ids;
}

static inline bool
InSorted(const int64 *ids, int n, int64 id)
{
	return bsearch(&id, ids, n, sizeof(int64), EcrmCompareInt64) != NULL;
}

/* Order of history entries: by customer, keeping the input order within. */
static int
CompareHistoryIndex(const void *a, const void *b, void *arg)
{
	const HistoryInput *h = arg;
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	if (h->customer[x] != h->customer[y])
		return h->customer[x] < h->customer[y] ? -1 : 1;
	return (x > y) - (x < y);
}

EcrmServeArgs *
EcrmServeParse(FunctionCallInfo fcinfo)
{
	EcrmServeArgs *a = palloc0(sizeof(EcrmServeArgs));
	ArrayType  *ac,
			   *ap,
			   *aw,
			   *ae,
			   *pp,
			   *ps;
	int			i;

	/* an install script older than this library would pass fewer arguments */
	if (PG_NARGS() != 12)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recommendation candidates: expected 12 arguments, got %d", PG_NARGS()),
				 errhint("The ecrm SQL objects do not match the installed library; run ALTER EXTENSION ecrm UPDATE.")));
	for (i = 0; i < 11; i++)
		if (PG_ARGISNULL(i) && i != 3 && i != 4)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("recommendation candidates: only the product lists and the reasons may be null")));
	a->model_id = PG_GETARG_INT64(0);
	a->k = PG_GETARG_INT32(1);
	EcrmCheckK(a->k, EcrmMaxK, "k");
	a->customers = SortedIdArg(fcinfo, 2, "customers", &a->ncustomers);
	a->only = SortedIdArg(fcinfo, 3, "only", &a->nonly);
	a->never = SortedIdArg(fcinfo, 4, "never", &a->nnever);

	ac = PG_GETARG_ARRAYTYPE_P(5);
	ap = PG_GETARG_ARRAYTYPE_P(6);
	aw = PG_GETARG_ARRAYTYPE_P(7);
	ae = PG_GETARG_ARRAYTYPE_P(8);
	a->h.n = ArrayLength(ac);
	if (ArrayLength(ap) != a->h.n || ArrayLength(aw) != a->h.n || ArrayLength(ae) != a->h.n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("history arrays must have the same length")));
	CheckNoNulls(ac, "history customers");
	CheckNoNulls(ap, "history products");
	CheckNoNulls(aw, "history weights");
	CheckNoNulls(ae, "history exclusions");
	a->h.customer = EcrmArrayData(ac);
	a->h.product = EcrmArrayData(ap);
	a->h.weight = EcrmArrayData(aw);
	a->h.exclude = EcrmArrayData(ae);
	for (i = 0; i < a->h.n; i++)
		if (isnan(a->h.weight[i]) || isinf(a->h.weight[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("history weight must be a finite number, not %g", a->h.weight[i])));
	a->order = palloc(sizeof(int) * Max(a->h.n, 1));
	for (i = 0; i < a->h.n; i++)
		a->order[i] = i;
	qsort_arg(a->order, a->h.n, sizeof(int), CompareHistoryIndex, &a->h);

	pp = PG_GETARG_ARRAYTYPE_P(9);
	ps = PG_GETARG_ARRAYTYPE_P(10);
	a->npopular = ArrayLength(pp);
	if (ArrayLength(ps) != a->npopular)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("popular products and their scores must have the same length")));
	CheckNoNulls(pp, "popular products");
	CheckNoNulls(ps, "popular scores");
	a->popular = EcrmArrayData(pp);
	a->popular_score = EcrmArrayData(ps);
	EcrmCheckFiniteArray(a->popular_score, a->npopular, "popular scores");

	if (!PG_ARGISNULL(11))
	{
		ArrayType  *ar = PG_GETARG_ARRAYTYPE_P(11);
		int			n;

		deconstruct_array(ar, TEXTOID, -1, false, TYPALIGN_INT, &a->reasons, &a->reason_nulls, &n);
		if (n != a->h.n)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("history reasons must have as many elements as the history")));
	}
	return a;
}

/* Is a a worse candidate than b?  Lower score, then higher product id. */
static inline bool
CandWorse(const EcrmCandidate *a, const EcrmCandidate *b)
{
	if (a->score != b->score)
		return a->score < b->score;
	return a->product > b->product;
}

static void
CandSiftDown(EcrmCandidate *h, int n, int i)
{
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					w = i;
		EcrmCandidate t;

		if (l < n && CandWorse(&h[l], &h[w]))
			w = l;
		if (r < n && CandWorse(&h[r], &h[w]))
			w = r;
		if (w == i)
			return;
		t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

static int
CompareCandidate(const void *a, const void *b)
{
	if (CandWorse(a, b))
		return 1;
	if (CandWorse(b, a))
		return -1;
	return 0;
}

/*
 * Keep the best k of n candidates in c[0..k), best first; returns how many.
 * A min-heap of size k: O(n log k), for models that score the whole catalogue.
 */
int
EcrmTopK(EcrmCandidate *c, int n, int k)
{
	int			i,
				m = Min(n, k);

	if (n > k)
	{
		for (i = k / 2 - 1; i >= 0; i--)
			CandSiftDown(c, k, i);
		for (i = k; i < n; i++)
			if (CandWorse(&c[0], &c[i]))
			{
				c[0] = c[i];
				CandSiftDown(c, k, 0);
			}
	}
	qsort(c, m, sizeof(EcrmCandidate), CompareCandidate);
	return m;
}

/*
 * One row; popular is the 1-based position in the popular list of a fill-in,
 * 0 for a model candidate, whose reason template is that of the history row
 * of the product that explains it.
 */
static void
Emit(ReturnSetInfo *rsinfo, const EcrmServeArgs *a, const int *rows, int nrows, int64 customer, int rank,
	 int64 product, double score, int64 because, bool has_because, int popular)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, !has_because, popular == 0, true};
	int			i;

	values[0] = Int64GetDatum(customer);
	values[1] = Int32GetDatum(rank);
	values[2] = Int64GetDatum(product);
	values[3] = Float8GetDatum(score);
	values[4] = Int64GetDatum(because);
	values[5] = Int32GetDatum(popular);
	values[6] = (Datum) 0;
	for (i = 0; has_because && a->reasons != NULL && i < nrows; i++)
		if (a->h.product[rows[i]] == because && !a->reason_nulls[rows[i]])
		{
			values[6] = a->reasons[rows[i]];
			nulls[6] = false;
			break;
		}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

void
EcrmServeRun(FunctionCallInfo fcinfo, EcrmServeArgs *a, const EcrmServeModel *model)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64	   *excl = palloc(sizeof(int64) * Max(a->h.n, 1));
	int			hpos = 0,
				ci;

	for (ci = 0; ci < a->ncustomers; ci++)
	{
		int64		customer = a->customers[ci];
		int			start,
					end,
					nexcl = 0,
					ncand = 0,
					cap,
					nkeep = 0,
					i,
					j;
		EcrmCandidate *cand = NULL;
		double		scale;

		CHECK_FOR_INTERRUPTS();
		if (ci > 0 && customer == a->customers[ci - 1])
			continue;
		/* this customer's history rows (histories of customers not asked for are skipped) */
		while (hpos < a->h.n && a->h.customer[a->order[hpos]] < customer)
			hpos++;
		start = end = hpos;
		while (end < a->h.n && a->h.customer[a->order[end]] == customer)
			end++;
		hpos = end;
		for (i = start; i < end; i++)
			if (a->h.exclude[a->order[i]])
				excl[nexcl++] = a->h.product[a->order[i]];
		qsort(excl, nexcl, sizeof(int64), EcrmCompareInt64);

		if (end > start)
			ncand = model->score(model->state, &a->h, a->order + start, end - start, &cand);
		cap = cand == NULL ? 0 : Max(ncand, 1);
		for (i = 0; i < ncand; i++)
		{
			int64		p = cand[i].product;

			if (InSorted(excl, nexcl, p) ||
				(a->never != NULL && InSorted(a->never, a->nnever, p)) ||
				(a->only != NULL && !InSorted(a->only, a->nonly, p)))
				continue;
			cand[nkeep++] = cand[i];
		}
		nkeep = EcrmTopK(cand, nkeep, a->k);
		if (nkeep > 0 && model->explain != NULL)
			model->explain(model->state, &a->h, a->order + start, end - start, cand, nkeep);
		for (i = 0; i < nkeep; i++)
			Emit(rsinfo, a, a->order + start, end - start, customer, i + 1, cand[i].product, cand[i].score,
				 cand[i].because, cand[i].has_because, 0);

		/*
		 * Top up from popularity.  After the model's candidates a fill-in
		 * scores its popularity share times the last candidate's score, so
		 * scores never rise with the rank.
		 */
		scale = nkeep > 0 ? cand[nkeep - 1].score : 1.0;
		for (j = 0; j < a->npopular && nkeep < a->k; j++)
		{
			int64		p = a->popular[j];
			bool		dup = false;

			if (InSorted(excl, nexcl, p) ||
				(a->never != NULL && InSorted(a->never, a->nnever, p)) ||
				(a->only != NULL && !InSorted(a->only, a->nonly, p)))
				continue;
			for (i = 0; i < nkeep && !dup; i++)
				dup = cand[i].product == p;
			if (dup)
				continue;
			/* remember it so a repeated popular id is not offered twice */
			if (nkeep >= cap)
			{
				cap = nkeep + a->k;
				cand = cand == NULL ? palloc(sizeof(EcrmCandidate) * cap)
					: repalloc(cand, sizeof(EcrmCandidate) * cap);
			}
			cand[nkeep].product = p;
			nkeep++;
			Emit(rsinfo, a, NULL, 0, customer, nkeep, p, a->popular_score[j] * scale, 0, false, j + 1);
		}
		if (cand != NULL)
			pfree(cand);
	}
}
