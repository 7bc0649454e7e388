/*
 * ratings.c — the rating matrix of the recommendation kernels: read
 * (customer, product, weight) rows from a query into a sparse matrix kept by
 * customer (CSR) and by product (CSC).
 *
 * Rows are read through an SPI cursor in batches into chunks of
 * (customer index, product index, weight) triples, ids mapped to dense
 * indexes by hash tables.  The ids are then sorted so that the matrix does
 * not depend on the order of the query's rows, and the triples are scattered
 * by product, transposed to customer order (which sorts each customer's row),
 * duplicates summed, and transposed back.  No comparison sort of the ratings
 * is needed.
 *
 * Memory: about 20 bytes per input row and 40 per distinct customer or
 * product while loading, 16 bytes per distinct pair afterwards; all of it is
 * checked against maintenance_work_mem before it is allocated.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "ecrm.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "recommend.h"
#include "utils/timestamp.h"

/* Rows fetched from the cursor at a time, and triples per staging chunk. */
#define FETCH_ROWS	10000
#define CHUNK_TRIPLES (1 << 16)

/* Largest weight a single row may carry. */
#define MAX_WEIGHT	1e9

typedef struct Triple
{
	int32		row;
	int32		col;
	float		w;
} Triple;

typedef struct IdEntry
{
	int64		id;
	int32		index;
	char		status;
} IdEntry;

#define SH_PREFIX idmap
#define SH_ELEMENT_TYPE IdEntry
#define SH_KEY_TYPE int64
#define SH_KEY id
#define SH_HASH_KEY(tb, key) EcrmHashInt64(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* Figures of the last build in this backend, for ecrm._rec_last_build(). */
static struct
{
	bool		valid;
	int64		customers;
	int64		products;
	int64		ratings;
	int64		input_rows;
	int64		peak_bytes;
	double		seconds;
}			LastBuild;

void
EcrmRecordBuild(const EcrmRatings *m, Size peak_bytes, double seconds)
{
	LastBuild.valid = true;
	LastBuild.customers = m->nrows;
	LastBuild.products = m->ncols;
	LastBuild.ratings = m->nnz;
	LastBuild.input_rows = m->input_rows;
	LastBuild.peak_bytes = (int64) Max(peak_bytes, m->peak_bytes);
	LastBuild.seconds = seconds;
}

/* Figures of the last model build of this session. */
PG_FUNCTION_INFO_V1(ecrm_rec_last_build);
Datum
ecrm_rec_last_build(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!LastBuild.valid)
		PG_RETURN_NULL();
	values[0] = Int64GetDatum(LastBuild.customers);
	values[1] = Int64GetDatum(LastBuild.products);
	values[2] = Int64GetDatum(LastBuild.ratings);
	values[3] = Int64GetDatum(LastBuild.input_rows);
	values[4] = Int64GetDatum(LastBuild.peak_bytes);
	values[5] = Float8GetDatum(LastBuild.seconds);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

double
EcrmSecondsSince(TimestampTz t)
{
	return (double) (GetCurrentTimestamp() - t) / USECS_PER_SEC;
}

void
EcrmProgressStart(EcrmProgressState *p, const char *what, const char *unit, int64 total)
{
	p->what = what;
	p->unit = unit;
	p->total = total;
	p->next_tenth = 1;
	p->started = p->last = GetCurrentTimestamp();
}

void
EcrmProgress(EcrmProgressState *p, int64 done)
{
	int			tenth;

	if (p->total <= 0 || done * 10 < p->total * p->next_tenth)
		return;
	tenth = (int) Min(10, done * 10 / p->total);
	p->next_tenth = tenth + 1;
	if (tenth >= 10 || EcrmSecondsSince(p->last) < ecrm_progress_interval)
		return;
	p->last = GetCurrentTimestamp();
	ereport(NOTICE,
			(errmsg("%s: %d%% done (" INT64_FORMAT " of " INT64_FORMAT " %s, %.1f s)",
					p->what, tenth * 10, done, p->total, p->unit,
					EcrmSecondsSince(p->started))));
}

void
EcrmCheckMemory(Size bytes, const char *fn, const char *what)
{
	Size		limit = (Size) maintenance_work_mem * 1024;

	if (bytes > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s needs more memory than maintenance_work_mem allows", fn),
				 errdetail("%s needs %zu MB; maintenance_work_mem is %d MB.",
						   what, bytes / (1024 * 1024) + 1, maintenance_work_mem / 1024),
				 errhint("Raise maintenance_work_mem for this session, or train on fewer ratings.")));
}

void *
EcrmAllocArray(Size n, Size sz)
{
	Size		bytes = mul_size(Max(n, 1), sz);

	return palloc_extended(bytes, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}

Size
EcrmRatingsBytes(int64 nrows, int64 ncols, int64 nnz)
{
	Size		b = 0;

	b = add_size(b, mul_size(nrows, sizeof(int64) * 2));	/* ids, row_ptr */
	b = add_size(b, mul_size(ncols, sizeof(int64) * 2));	/* ids, col_ptr */
	b = add_size(b, mul_size(nnz, (sizeof(int32) + sizeof(float)) * 2));
	return b;
}

int32
EcrmFindId(const int64 *ids, int32 n, int64 id)
{
	int32		lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (ids[mid] == id)
			return mid;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Is this a type the id columns accept? */
static bool
IsIdType(Oid t)
{
	return t == INT8OID || t == INT4OID || t == INT2OID;
}

static bool
IsWeightType(Oid t)
{
	return t == FLOAT8OID || t == FLOAT4OID || t == NUMERICOID || IsIdType(t);
}

static int64
IdDatum(Datum d, Oid t)
{
	if (t == INT8OID)
		return DatumGetInt64(d);
	if (t == INT4OID)
		return DatumGetInt32(d);
	return DatumGetInt16(d);
}

static double
WeightDatum(Datum d, Oid t)
{
	switch (t)
	{
		case FLOAT8OID:
			return DatumGetFloat8(d);
		case FLOAT4OID:
			return DatumGetFloat4(d);
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
		default:
			return (double) IdDatum(d, t);
	}
}

/* The dense index of an id, adding it when new. */
static inline int32
IdIndex(idmap_hash *map, int64 id, const char *fn, const char *what)
{
	bool		found;
	IdEntry    *e = idmap_insert(map, id, &found);

	if (!found)
	{
		if (map->members > ECRM_MAX_MATRIX_DIM)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("%s: too many distinct %s", fn, what),
					 errdetail("At most %d are supported.", ECRM_MAX_MATRIX_DIM)));
		e->index = (int32) (map->members - 1);
	}
	return e->index;
}

static int
CompareIdIndex(const void *a, const void *b)
{
	int64		x = ((const int64 *) a)[0];
	int64		y = ((const int64 *) b)[0];

	return (x > y) - (x < y);
}

/*
 * The ids of a map in ascending order, and old index -> new index in *remap.
 */
static int64 *
SortedIds(idmap_hash *map, int32 **remap)
{
	int32		n = (int32) map->members;
	int64	   *pairs = EcrmAllocArray((Size) n * 2, sizeof(int64));
	int64	   *ids = EcrmAllocArray(n, sizeof(int64));
	int32	   *re = EcrmAllocArray(n, sizeof(int32));
	idmap_iterator it;
	IdEntry    *e;
	int32		k = 0;

	idmap_start_iterate(map, &it);
	while ((e = idmap_iterate(map, &it)) != NULL)
	{
		pairs[2 * k] = e->id;
		pairs[2 * k + 1] = e->index;
		k++;
	}
	qsort(pairs, n, 2 * sizeof(int64), CompareIdIndex);
	for (k = 0; k < n; k++)
	{
		ids[k] = pairs[2 * k];
		re[pairs[2 * k + 1]] = k;
	}
	pfree(pairs);
	*remap = re;
	return ids;
}

/*
 * Transpose a compressed matrix: (ptr, idx, val) over n outer entries into
 * (tptr, tidx, tval) over m outer entries.  Walking the outer entries in
 * order leaves every transposed list sorted.
 */
static void
Transpose(int32 n, int32 m, const int64 *ptr, const int32 *idx, const float *val,
		  int64 **tptr_out, int32 **tidx_out, float **tval_out)
{
	int64		nnz = ptr[n];
	int64	   *tptr = EcrmAllocArray((Size) m + 1, sizeof(int64));
	int32	   *tidx = EcrmAllocArray(nnz, sizeof(int32));
	float	   *tval = EcrmAllocArray(nnz, sizeof(float));
	int64	   *fill;
	int64		p;
	int32		i;

	for (p = 0; p < nnz; p++)
		tptr[idx[p] + 1]++;
	for (i = 0; i < m; i++)
		tptr[i + 1] += tptr[i];
	fill = EcrmAllocArray(m, sizeof(int64));
	memcpy(fill, tptr, sizeof(int64) * m);
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		for (p = ptr[i]; p < ptr[i + 1]; p++)
		{
			int64		q = fill[idx[p]]++;

			tidx[q] = i;
			tval[q] = val[p];
		}
	}
	pfree(fill);
	*tptr_out = tptr;
	*tidx_out = tidx;
	*tval_out = tval;
}

EcrmRatings *
EcrmLoadRatings(const char *query, const char *fn)
{
	EcrmRatings *m = palloc0(sizeof(EcrmRatings));
	MemoryContext outer = CurrentMemoryContext;
	idmap_hash *rows;
	idmap_hash *cols;
	Triple	  **chunks;
	int			nchunks = 0,
				maxchunks = 16;
	int64		ntrip = 0;
	Portal		portal;
	Oid			types[3];
	int32	   *rowre,
			   *colre;
	int64	   *cptr,
			   *rptr;
	int32	   *cidx,
			   *ridx;
	float	   *cval,
			   *rval;
	int64		p,
				q;
	int32		i;
	Size		used;
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz last = started;

	if (query == NULL || query[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the ratings query is empty", fn),
				 errhint("Pass a query returning (customer bigint, product bigint, weight double precision).")));

	rows = idmap_create(outer, 1024, NULL);
	cols = idmap_create(outer, 1024, NULL);
	chunks = palloc(sizeof(Triple *) * maxchunks);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL, query, 0, NULL, NULL, NULL, true, 0);

	for (;;)
	{
		SPITupleTable *tt;
		uint64		k;

		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		tt = SPI_tuptable;
		if (tt == NULL)
			break;
		if (ntrip == 0)
		{
			TupleDesc	d = tt->tupdesc;

			if (d->natts != 3)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("%s: the ratings query must return 3 columns, not %d", fn, d->natts),
						 errhint("Return (customer bigint, product bigint, weight double precision).")));
			for (i = 0; i < 3; i++)
				types[i] = SPI_gettypeid(d, i + 1);
			if (!IsIdType(types[0]) || !IsIdType(types[1]) || !IsWeightType(types[2]))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("%s: the ratings query returns (%s, %s, %s)", fn,
								format_type_be(types[0]), format_type_be(types[1]),
								format_type_be(types[2])),
						 errdetail("The first two columns must be integers (ids), the third a number (the weight)."),
						 errhint("Cast the columns: customer::bigint, product::bigint, weight::double precision.")));
		}
		if (tt->numvals == 0)
		{
			SPI_freetuptable(tt);
			break;
		}
		for (k = 0; k < tt->numvals; k++)
		{
			HeapTuple	tup = tt->vals[k];
			bool		n0,
						n1,
						n2;
			Datum		d0 = SPI_getbinval(tup, tt->tupdesc, 1, &n0);
			Datum		d1 = SPI_getbinval(tup, tt->tupdesc, 2, &n1);
			Datum		d2 = SPI_getbinval(tup, tt->tupdesc, 3, &n2);
			int64		cust,
						prod;
			double		w;
			MemoryContext old;
			Triple	   *t;

			if (n0 || n1 || n2)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("%s: the ratings query returned a null %s", fn,
								n0 ? "customer" : n1 ? "product" : "weight"),
						 errdetail("Row " INT64_FORMAT " has a null value.", m->input_rows + 1),
						 errhint("Filter out rows with null ids or weights.")));
			cust = IdDatum(d0, types[0]);
			prod = IdDatum(d1, types[1]);
			w = WeightDatum(d2, types[2]);
			if (isnan(w) || isinf(w))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: weight must be a finite number, not %g", fn, w),
						 errdetail("Customer " INT64_FORMAT ", product " INT64_FORMAT " has weight %g.",
								   cust, prod, w)));
			if (w < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: weight must not be negative, not %g", fn, w),
						 errdetail("Customer " INT64_FORMAT ", product " INT64_FORMAT " has weight %g.",
								   cust, prod, w),
						 errhint("Net out returns before training: sum the weights per customer and product and keep the positive sums.")));
			if (w > MAX_WEIGHT)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("%s: weight %g is out of range", fn, w),
						 errdetail("Customer " INT64_FORMAT ", product " INT64_FORMAT " has weight %g; at most %g is allowed.",
								   cust, prod, w, MAX_WEIGHT),
						 errhint("Scale the weights down, or take their logarithm.")));
			m->input_rows++;
			if (w == 0)
				continue;

			old = MemoryContextSwitchTo(outer);
			if (ntrip == (int64) nchunks * CHUNK_TRIPLES)
			{
				used = add_size(mul_size((Size) nchunks + 1, CHUNK_TRIPLES * sizeof(Triple)),
								mul_size(rows->size + cols->size, sizeof(IdEntry)));
				/* and what the matrix will need on top of the chunks */
				EcrmCheckMemory(add_size(used, mul_size(ntrip + CHUNK_TRIPLES, sizeof(int32) + sizeof(float))),
								fn, "reading the ratings");
				if (nchunks == maxchunks)
				{
					maxchunks *= 2;
					chunks = repalloc(chunks, sizeof(Triple *) * maxchunks);
				}
				chunks[nchunks++] = palloc_extended(CHUNK_TRIPLES * sizeof(Triple), MCXT_ALLOC_HUGE);
			}
			t = &chunks[ntrip / CHUNK_TRIPLES][ntrip % CHUNK_TRIPLES];
			t->row = IdIndex(rows, cust, fn, "customers");
			t->col = IdIndex(cols, prod, fn, "products");
			t->w = (float) w;
			MemoryContextSwitchTo(old);
			ntrip++;
		}
		SPI_freetuptable(tt);
		CHECK_FOR_INTERRUPTS();
		if (EcrmSecondsSince(last) >= Max(ecrm_progress_interval, 0.001) && ecrm_progress_interval > 0)
		{
			last = GetCurrentTimestamp();
			ereport(NOTICE,
					(errmsg("%s: read " INT64_FORMAT " ratings (%.1f s)", fn, m->input_rows,
							EcrmSecondsSince(started))));
		}
	}
	SPI_cursor_close(portal);
	SPI_finish();

	if (ntrip == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("%s: no ratings to train on", fn),
				 m->input_rows == 0 ? errdetail("The ratings query returned no rows.") :
				 errdetail_plural("The ratings query returned " INT64_FORMAT " row, without a positive weight.",
								  "The ratings query returned " INT64_FORMAT " rows, none with a positive weight.",
								  (unsigned long) m->input_rows, m->input_rows),
				 errhint("Check the training period and the interaction weights.")));

	m->nrows = (int32) rows->members;
	m->ncols = (int32) cols->members;
	m->row_ids = SortedIds(rows, &rowre);
	m->col_ids = SortedIds(cols, &colre);
	used = add_size(mul_size((Size) nchunks, CHUNK_TRIPLES * sizeof(Triple)),
					mul_size(rows->size + cols->size, sizeof(IdEntry)));
	idmap_destroy(rows);
	idmap_destroy(cols);

	/* Scatter the triples by product. */
	EcrmCheckMemory(add_size(used, EcrmRatingsBytes(m->nrows, m->ncols, ntrip)), fn, "building the rating matrix");
	m->peak_bytes = add_size(used, EcrmRatingsBytes(m->nrows, m->ncols, ntrip) / 2);
	cptr = EcrmAllocArray((Size) m->ncols + 1, sizeof(int64));
	for (p = 0; p < ntrip; p++)
		cptr[colre[chunks[p / CHUNK_TRIPLES][p % CHUNK_TRIPLES].col] + 1]++;
	for (i = 0; i < m->ncols; i++)
		cptr[i + 1] += cptr[i];
	cidx = EcrmAllocArray(ntrip, sizeof(int32));
	cval = EcrmAllocArray(ntrip, sizeof(float));
	{
		int64	   *fill = EcrmAllocArray(m->ncols, sizeof(int64));

		memcpy(fill, cptr, sizeof(int64) * m->ncols);
		for (p = 0; p < ntrip; p++)
		{
			Triple	   *t = &chunks[p / CHUNK_TRIPLES][p % CHUNK_TRIPLES];
			int64		at = fill[colre[t->col]]++;

			cidx[at] = rowre[t->row];
			cval[at] = t->w;
			if ((p & 0xFFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		pfree(fill);
	}
	for (i = 0; i < nchunks; i++)
		pfree(chunks[i]);
	pfree(chunks);
	pfree(rowre);
	pfree(colre);

	/* By customer, each row sorted by product; then sum duplicates in place. */
	Transpose(m->ncols, m->nrows, cptr, cidx, cval, &rptr, &ridx, &rval);
	pfree(cptr);
	pfree(cidx);
	pfree(cval);
	q = 0;
	for (i = 0; i < m->nrows; i++)
	{
		int64		start = q;
		int64		end = rptr[i + 1];

		p = rptr[i];
		while (p < end)
		{
			int32		c = ridx[p];
			double		sum = 0;

			while (p < end && ridx[p] == c)
				sum += rval[p++];
			ridx[q] = c;
			rval[q] = (float) sum;
			q++;
		}
		rptr[i] = start;
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	rptr[m->nrows] = q;
	m->nnz = q;
	m->row_ptr = rptr;
	m->row_col = ridx;
	m->row_val = rval;

	/* By product again, from the deduplicated rows. */
	Transpose(m->nrows, m->ncols, m->row_ptr, m->row_col, m->row_val,
			  &m->col_ptr, &m->col_row, &m->col_val);
	m->bytes = EcrmRatingsBytes(m->nrows, m->ncols, m->nnz);
	m->peak_bytes = Max(m->peak_bytes, m->bytes);
	return m;
}
