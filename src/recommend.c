/*
 * recommend.c — item-to-item collaborative filtering (Linden, Smith & York
 * 2003): build the top-k neighbours of every product from a rating matrix,
 * and score candidate products for customers from their history.
 *
 * Similarity of history product i to candidate j, over customers u:
 *
 *     dot(i, j) = sum_u r_ui r_uj / n_u^a          (a: activity damping)
 *     s(i -> j) = dot(i, j) / (|i|^(2 (1 - d)) |j|^(2 d))
 *                 * support / (support + lambda)   (lambda: shrinkage)
 *
 * where n_u is the number of products of customer u, |i|^2 = dot(i, i) and
 * support the number of customers who rated both.  d = 0.5 is the cosine;
 * d = 0 is the conditional probability P(j | i), which bestsellers dominate;
 * d between them damps very popular candidates less than the cosine does,
 * above 0.5 more (Aiolli's asymmetric cosine, RecSys 2013).  Activity damping
 * keeps a wholesaler with a thousand products from linking them all.
 *
 * The build costs sum_u n_u^2 multiply-adds: per product an accumulator pass
 * over the customers who rated it.  Memory beyond the rating matrix is
 * 72 bytes per product (accumulators and the candidates of one product).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "ecrm.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "recommend.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#define MAX_NEIGHBORS 1000

static void
CheckRange(double v, double lo, double hi, const char *name)
{
	if (isnan(v) || v < lo || v > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %g and %g, not %g", name, lo, hi, v)));
}

/* Build the top-k neighbours of every product of a rating matrix. */
PG_FUNCTION_INFO_V1(ecrm_item_knn);
Datum
ecrm_item_knn(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query;
	int32		k = PG_GETARG_INT32(1);
	double		shrinkage = PG_GETARG_FLOAT8(2);
	double		pop_damp = PG_GETARG_FLOAT8(3);
	double		act_damp = PG_GETARG_FLOAT8(4);
	int32		min_support = PG_GETARG_INT32(5);
	MemoryContext work,
				old;
	EcrmRatings *m;
	double	   *damp,
			   *sqnorm,
			   *den_hist,
			   *den_cand,
			   *acc;
	int32	   *cnt,
			   *touched;
	EcrmCandidate *cand;
	int32		i;
	EcrmProgressState progress;
	TimestampTz started = GetCurrentTimestamp();
	int64		emitted = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) ||
		PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("item_knn: arguments must not be null")));
	EcrmCheckK(k, MAX_NEIGHBORS, "k");
	CheckRange(shrinkage, 0, 1e6, "shrinkage");
	CheckRange(pop_damp, 0, 1, "popularity_damping");
	CheckRange(act_damp, 0, 2, "activity_damping");
	if (min_support < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_support must be at least 1, not %d", min_support)));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));

	InitMaterializedSRF(fcinfo, 0);

	work = AllocSetContextCreate(CurrentMemoryContext, "ecrm item_knn", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	m = EcrmLoadRatings(query, "item_knn");
	EcrmCheckMemory(add_size(m->bytes, mul_size(m->ncols, sizeof(double) * 4 + sizeof(int32) * 2 + sizeof(EcrmCandidate))),
					"item_knn", "the similarity build");
	ereport(NOTICE,
			(errmsg("item_knn: " INT64_FORMAT " ratings of %d customers on %d products (%.1f s, %.1f MB)",
					m->nnz, m->nrows, m->ncols, EcrmSecondsSince(started),
					m->peak_bytes / (1024.0 * 1024.0))));

	damp = EcrmAllocArray(m->nrows, sizeof(double));
	for (i = 0; i < m->nrows; i++)
		damp[i] = pow((double) (m->row_ptr[i + 1] - m->row_ptr[i]), -act_damp);
	sqnorm = EcrmAllocArray(m->ncols, sizeof(double));
	den_hist = EcrmAllocArray(m->ncols, sizeof(double));
	den_cand = EcrmAllocArray(m->ncols, sizeof(double));
	for (i = 0; i < m->ncols; i++)
	{
		int64		p;
		double		s = 0;

		for (p = m->col_ptr[i]; p < m->col_ptr[i + 1]; p++)
			s += (double) m->col_val[p] * m->col_val[p] * damp[m->col_row[p]];
		sqnorm[i] = s;
		den_hist[i] = pow(s, 1 - pop_damp);
		den_cand[i] = pow(s, pop_damp);
	}
	acc = EcrmAllocArray(m->ncols, sizeof(double));
	cnt = EcrmAllocArray(m->ncols, sizeof(int32));
	touched = EcrmAllocArray(m->ncols, sizeof(int32));
	cand = EcrmAllocArray(m->ncols, sizeof(EcrmCandidate));

	EcrmProgressStart(&progress, "item_knn", "products", m->ncols);
	for (i = 0; i < m->ncols; i++)
	{
		int32		nt = 0,
					nc = 0,
					t;
		int64		p;

		CHECK_FOR_INTERRUPTS();
		for (p = m->col_ptr[i]; p < m->col_ptr[i + 1]; p++)
		{
			int32		u = m->col_row[p];
			double		f = (double) m->col_val[p] * damp[u];
			int64		q;

			for (q = m->row_ptr[u]; q < m->row_ptr[u + 1]; q++)
			{
				int32		j = m->row_col[q];

				if (cnt[j] == 0)
					touched[nt++] = j;
				acc[j] += f * m->row_val[q];
				cnt[j]++;
			}
		}
		for (t = 0; t < nt; t++)
		{
			int32		j = touched[t];

			if (j != i && cnt[j] >= min_support && acc[j] > 0)
			{
				/* indexes follow the ids, so ties go to the lower product id */
				cand[nc].product = j;
				cand[nc].score = acc[j] / (den_hist[i] * den_cand[j]);
				if (shrinkage > 0)
					cand[nc].score *= cnt[j] / (cnt[j] + shrinkage);
				cand[nc].support = cnt[j];
				nc++;
			}
			acc[j] = 0;
			cnt[j] = 0;
		}
		nc = EcrmTopK(cand, nc, k);
		for (t = 0; t < nc; t++)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};

			values[0] = Int64GetDatum(m->col_ids[i]);
			values[1] = Int64GetDatum(m->col_ids[cand[t].product]);
			values[2] = Float8GetDatum(cand[t].score);
			values[3] = Int32GetDatum(cand[t].support);
			values[4] = Int32GetDatum(t + 1);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		emitted += nc;
		EcrmProgress(&progress, i + 1);
	}
	ereport(NOTICE,
			(errmsg("item_knn: " INT64_FORMAT " neighbours of %d products (%.1f s)",
					emitted, m->ncols, EcrmSecondsSince(started))));
	EcrmRecordBuild(m, add_size(m->bytes, mul_size(m->ncols, sizeof(double) * 4 + sizeof(int32) * 2 + sizeof(EcrmCandidate))),
					EcrmSecondsSince(started));

	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}


/*
 * Serving an item-item model: score(u, j) = sum over history products i of
 * w_ui * weight(i -> j), the history product with the largest term being the
 * reason.  The neighbour lists of the history products are read in one query
 * (one index probe per product), so the cost does not grow with the catalogue.
 */
typedef struct NeighborLists
{
	int			n;
	int64	   *product;		/* sorted */
	int		   *len;
	int64	  **ids;
	float	  **weights;
} NeighborLists;

static SPIPlanPtr NeighborPlan = NULL;

static NeighborLists *
LoadNeighbors(int64 model_id, const HistoryInput *h)
{
	NeighborLists *nl = palloc0(sizeof(NeighborLists));
	MemoryContext outer = CurrentMemoryContext;
	Datum	   *elems = palloc(sizeof(Datum) * Max(h->n, 1));
	int64	   *products = palloc(sizeof(int64) * Max(h->n, 1));
	int			nproducts = 0,
				i;
	Datum		args[2];
	Oid			argtypes[2] = {INT8OID, INT8ARRAYOID};
	uint64		r;
	int			ret;

	/* the distinct products with a positive weight */
	for (i = 0; i < h->n; i++)
		if (h->weight[i] > 0)
			products[nproducts++] = h->product[i];
	qsort(products, nproducts, sizeof(int64), EcrmCompareInt64);
	i = 0;
	for (int j = 0; j < nproducts; j++)
		if (j == 0 || products[j] != products[j - 1])
			elems[i++] = Int64GetDatum(products[j]);
	nproducts = i;
	args[0] = Int64GetDatum(model_id);
	args[1] = PointerGetDatum(construct_array(elems, nproducts, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* planned once per backend: an index probe per product */
	if (NeighborPlan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare("SELECT n.product_id, n.neighbor_ids, n.weights "
									   "FROM unnest($2) p(id) JOIN ecrm.rec_neighbor n "
									   "ON n.model_id = $1 AND n.product_id = p.id ORDER BY n.product_id",
									   2, argtypes);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "preparing the neighbour query failed: %s", SPI_result_code_string(SPI_result));
		NeighborPlan = plan;
	}
	ret = SPI_execute_plan(NeighborPlan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading ecrm.rec_neighbor failed: %s", SPI_result_code_string(ret));
	MemoryContextSwitchTo(outer);
	nl->n = (int) SPI_processed;
	nl->product = palloc(sizeof(int64) * Max(nl->n, 1));
	nl->len = palloc(sizeof(int) * Max(nl->n, 1));
	nl->ids = palloc(sizeof(int64 *) * Max(nl->n, 1));
	nl->weights = palloc(sizeof(float *) * Max(nl->n, 1));
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		n1,
					n2,
					n3;
		Datum		pid = SPI_getbinval(tup, d, 1, &n1);
		Datum		dids = SPI_getbinval(tup, d, 2, &n2);
		Datum		dw = SPI_getbinval(tup, d, 3, &n3);
		ArrayType  *ai,
				   *aw;

		nl->product[r] = DatumGetInt64(pid);
		if (n2 || n3)
			elog(ERROR, "ecrm.rec_neighbor has null lists");
		ai = DatumGetArrayTypePCopy(dids);
		aw = DatumGetArrayTypePCopy(dw);
		nl->len[r] = ArrayGetNItems(ARR_NDIM(ai), ARR_DIMS(ai));
		if (ARR_ELEMTYPE(ai) != INT8OID || ARR_ELEMTYPE(aw) != FLOAT4OID ||
			nl->len[r] != ArrayGetNItems(ARR_NDIM(aw), ARR_DIMS(aw)) ||
			array_contains_nulls(ai) || array_contains_nulls(aw))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("neighbour lists of product " INT64_FORMAT " in model " INT64_FORMAT " are malformed",
							nl->product[r], model_id),
					 errhint("Retrain the model.")));
		nl->ids[r] = EcrmArrayData(ai);
		nl->weights[r] = EcrmArrayData(aw);
	}
	SPI_finish();
	return nl;
}

static int
FindList(const NeighborLists *nl, int64 product)
{
	int			lo = 0,
				hi = nl->n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (nl->product[mid] == product)
			return mid;
		if (nl->product[mid] < product)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Per-customer accumulation of candidate scores, keyed by product id. */
typedef struct CandEntry
{
	int64		product;
	double		score;
	double		best;			/* largest single contribution */
	int64		because;
	char		status;
} CandEntry;

#define SH_PREFIX candmap
#define SH_ELEMENT_TYPE CandEntry
#define SH_KEY_TYPE int64
#define SH_KEY product
#define SH_HASH_KEY(tb, key) EcrmHashInt64(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct ItemServeState
{
	NeighborLists *nl;
	candmap_hash *map;
} ItemServeState;

static int
ItemScore(void *state, const HistoryInput *h, const int *rows, int nrows, EcrmCandidate **out)
{
	ItemServeState *st = state;
	candmap_iterator it;
	CandEntry  *e;
	EcrmCandidate *c;
	int			i,
				n = 0;

	candmap_reset(st->map);
	for (i = 0; i < nrows; i++)
	{
		int			x = rows[i];
		int			l;
		int			t;

		if (h->weight[x] <= 0 || (l = FindList(st->nl, h->product[x])) < 0)
			continue;
		for (t = 0; t < st->nl->len[l]; t++)
		{
			double		term = h->weight[x] * st->nl->weights[l][t];
			bool		found;

			e = candmap_insert(st->map, st->nl->ids[l][t], &found);
			if (!found)
			{
				e->score = 0;
				e->best = -1;
				e->because = 0;
			}
			e->score += term;
			if (term > e->best || (term == e->best && h->product[x] < e->because))
			{
				e->best = term;
				e->because = h->product[x];
			}
		}
	}
	c = palloc(sizeof(EcrmCandidate) * Max(st->map->members, 1));
	candmap_start_iterate(st->map, &it);
	while ((e = candmap_iterate(st->map, &it)) != NULL)
	{
		c[n].product = e->product;
		c[n].score = e->score;
		c[n].because = e->because;
		c[n].has_because = true;
		n++;
	}
	*out = c;
	return n;
}

/* Candidate products of an item-item model for customers, with popularity to top up. */
PG_FUNCTION_INFO_V1(ecrm_item_candidates);
Datum
ecrm_item_candidates(PG_FUNCTION_ARGS)
{
	MemoryContext work,
				old;
	EcrmServeArgs *a;
	ItemServeState st;
	EcrmServeModel model = {&st, ItemScore, NULL};

	InitMaterializedSRF(fcinfo, 0);
	work = AllocSetContextCreate(CurrentMemoryContext, "ecrm item candidates", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	a = EcrmServeParse(fcinfo);
	st.nl = LoadNeighbors(a->model_id, &a->h);
	st.map = candmap_create(work, 256, NULL);
	EcrmServeRun(fcinfo, a, &model);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return (Datum) 0;
}
