/*
 * rescore.c — real-time lead scoring: rescoring the customers a statement
 * touched under every active scoring model.
 *
 * The statement trigger on interactions and campaign events (the last function
 * here) collects the customers from the transition tables; the profile trigger
 * calls ecrm._rescore(ids).  Each active model carries its rescoring statement in
 * ecrm.scoring_model.rescore_sql (written when the model is activated): it
 * scores one customer ($1 as of, $2 customer id), upserts ecrm.lead_score and
 * counts whether the customer now passes a lifecycle threshold.  Planning that
 * statement costs far more than running it for one customer, so its plan is
 * kept for the session, one per model, and is forced generic: with a scalar
 * customer id the planner pushes the id into every grouped subquery, which an
 * "= ANY (array)" filter would not reach (ecrm.crm_features).  A kept plan is
 * replaced when the model's statement text changes and replanned by the plan
 * cache when a table it reads changes.
 *
 * Statements touching more than RESCORE_MAX_CACHED customers are rescored
 * set-based by ecrm._rescore_bulk(), planned for the actual set.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "ecrm.h"

/* More customers than this in one statement: one set-based rescoring instead. */
#define RESCORE_MAX_CACHED		1000

/* Kept plans of more models than this (a session that activated many versions) are dropped. */
#define RESCORE_MAX_PLANS		64

/* A model's kept rescoring plan and the statement it was made from. */
typedef struct RescorePlan
{
	int64		model_id;		/* hash key */
	char	   *sql;			/* in TopMemoryContext */
	SPIPlanPtr	plan;
} RescorePlan;

/* An active model as read at the start of a rescoring. */
typedef struct ActiveModel
{
	int64		model_id;
	char	   *sql;			/* NULL when the model has none */
} ActiveModel;

static HTAB *rescore_plans = NULL;
static int	rescore_depth = 0;

/* Statements of the rescoring itself, planned once per session. */
static SPIPlanPtr models_plan = NULL;
static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr promote_plan = NULL;
static SPIPlanPtr bulk_plan = NULL;

#define MODELS_SQL \
	"SELECT s.model_id, s.rescore_sql FROM ecrm.scoring_model s WHERE s.status = 'active' ORDER BY s.model_id"
/* Two transactions rescoring one customer would each miss the other's event: the second waits here. */
#define LOCK_SQL \
	"SELECT FROM ecrm.customer_profile c WHERE c.customer_id = ANY ($1) ORDER BY c.customer_id FOR NO KEY UPDATE"
#define PROMOTE_SQL \
	"SELECT ecrm._promote_leads(m, $2) FROM ecrm.scoring_model m WHERE m.model_id = $1"
#define BULK_SQL \
	"SELECT ecrm._rescore_bulk(m, $2) FROM ecrm.scoring_model m WHERE m.model_id = $1"

/* Prepare a statement once for the session with a generic plan. */
static SPIPlanPtr
KeptPlan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	if (*slot != NULL)
		return *slot;
	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	*slot = plan;
	return plan;
}

static void
RunPlan(SPIPlanPtr plan, Datum *values, int expected)
{
	int			rc = SPI_execute_plan(plan, values, NULL, false, 0);

	if (rc != expected)
		elog(ERROR, "ecrm rescoring: SPI_execute_plan returned %s", SPI_result_code_string(rc));
}

/* Drop every kept model plan (only when none is running). */
static void
ForgetRescorePlans(void)
{
	HASH_SEQ_STATUS seq;
	RescorePlan *e;

	hash_seq_init(&seq, rescore_plans);
	while ((e = (RescorePlan *) hash_seq_search(&seq)) != NULL)
	{
		SPI_freeplan(e->plan);
		pfree(e->sql);
		hash_search(rescore_plans, &e->model_id, HASH_REMOVE, NULL);
	}
}

/*
 * The plan of a model's rescoring statement, prepared on first use or when the
 * statement changed.  NULL when it cannot be kept now (a nested rescoring must
 * not free a plan an outer one is running): the caller runs the text once.
 */
static SPIPlanPtr
ModelPlan(int64 model_id, const char *sql)
{
	RescorePlan *e;
	SPIPlanPtr	plan;
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT8OID};
	CachedPlanSource *src;
	char	   *copy;
	bool		found;

	if (rescore_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(RescorePlan);
		ctl.hcxt = TopMemoryContext;
		rescore_plans = hash_create("ecrm rescoring plans", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = (RescorePlan *) hash_search(rescore_plans, &model_id, HASH_FIND, NULL);
	if (e != NULL && strcmp(e->sql, sql) == 0)
		return e->plan;
	if (rescore_depth > 1)
		return NULL;

	plan = SPI_prepare_cursor(sql, 2, argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the rescoring statement of scoring model " INT64_FORMAT " cannot be prepared: %s",
						model_id, SPI_result_code_string(SPI_result)),
				 errhint("Activate the model again to rebuild it.")));
	/* one query that returns the count of customers to promote */
	src = list_length(SPI_plan_get_plan_sources(plan)) == 1 ?
		(CachedPlanSource *) linitial(SPI_plan_get_plan_sources(plan)) : NULL;
	if (src == NULL || src->resultDesc == NULL || src->resultDesc->natts != 1 ||
		TupleDescAttr(src->resultDesc, 0)->atttypid != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the rescoring statement of scoring model " INT64_FORMAT " is not one query returning a count",
						model_id),
				 errhint("Activate the model again to rebuild it.")));

	copy = MemoryContextStrdup(TopMemoryContext, sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	if (e == NULL && hash_get_num_entries(rescore_plans) >= RESCORE_MAX_PLANS)
		ForgetRescorePlans();
	e = (RescorePlan *) hash_search(rescore_plans, &model_id, HASH_ENTER, &found);
	if (found)
	{
		SPI_freeplan(e->plan);
		pfree(e->sql);
	}
	e->sql = copy;
	e->plan = plan;
	return plan;
}

/* Rescore one customer under one model; true when they may move along the lifecycle. */
static bool
RescoreOne(int64 model_id, const char *sql, Datum as_of, int64 customer_id)
{
	SPIPlanPtr	plan = ModelPlan(model_id, sql);
	Datum		values[2] = {as_of, Int64GetDatum(customer_id)};
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT8OID};
	bool		isnull;
	int			rc;
	int64		n;

	if (plan != NULL)
		rc = SPI_execute_plan(plan, values, NULL, false, 0);
	else
		rc = SPI_execute_with_args(sql, 2, argtypes, values, NULL, false, 0);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ecrm rescoring: the statement of model " INT64_FORMAT " returned %s",
			 model_id, SPI_result_code_string(rc));
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return !isnull && n > 0;
}

/* The customer ids of a bigint[] (NULL elements left out) and their count. */
static int64 *
CustomerIds(ArrayType *a, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	int			k = 0;
	int64	   *ids;

	if (ARR_ELEMTYPE(a) != INT8OID)
		ECRM_BAD_ARG("customer ids must be a bigint array");
	deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &count);
	ids = palloc(sizeof(int64) * Max(count, 1));
	for (int i = 0; i < count; i++)
		if (!nulls[i])
			ids[k++] = DatumGetInt64(elems[i]);
	*n = k;
	return ids;
}

/* The active models (SPI connected); their count. */
static int
ActiveModels(ActiveModel **models)
{
	int			nmodels;

	RunPlan(KeptPlan(&models_plan, MODELS_SQL, 0, NULL), NULL, SPI_OK_SELECT);
	nmodels = (int) SPI_processed;
	*models = palloc(sizeof(ActiveModel) * Max(nmodels, 1));
	for (int i = 0; i < nmodels; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		bool		isnull;

		(*models)[i].model_id = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull));
		(*models)[i].sql = SPI_getvalue(t, SPI_tuptable->tupdesc, 2);
	}
	return nmodels;
}

/* Rescore the customers of idarr under the models (SPI connected). */
static void
RescoreUnder(ActiveModel *models, int nmodels, ArrayType *idarr)
{
	Oid			arr_arg[1] = {INT8ARRAYOID};
	Oid			model_args[2] = {INT8OID, INT8ARRAYOID};
	Datum		as_of = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	int64	   *ids;
	int64	   *promote;
	int			nids;
	Datum		values[2];

	ids = CustomerIds(idarr, &nids);
	if (nids == 0)
		return;

	values[0] = PointerGetDatum(idarr);
	if (nids <= RESCORE_MAX_CACHED)
		RunPlan(KeptPlan(&lock_plan, LOCK_SQL, 1, arr_arg), values, SPI_OK_SELECT);
	else if (SPI_execute_with_args(LOCK_SQL, 1, arr_arg, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "ecrm rescoring: locking the customers failed");

	promote = palloc(sizeof(int64) * nids);
	for (int m = 0; m < nmodels; m++)
	{
		int			npromote = 0;

		values[0] = Int64GetDatum(models[m].model_id);
		if (nids > RESCORE_MAX_CACHED || models[m].sql == NULL)
		{
			values[1] = PointerGetDatum(idarr);
			RunPlan(KeptPlan(&bulk_plan, BULK_SQL, 2, model_args), values, SPI_OK_SELECT);
			continue;
		}
		for (int i = 0; i < nids; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (RescoreOne(models[m].model_id, models[m].sql, as_of, ids[i]))
				promote[npromote++] = ids[i];
		}
		if (npromote > 0)
		{
			Datum	   *d = palloc(sizeof(Datum) * npromote);

			for (int i = 0; i < npromote; i++)
				d[i] = Int64GetDatum(promote[i]);
			values[1] = PointerGetDatum(construct_array(d, npromote, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			RunPlan(KeptPlan(&promote_plan, PROMOTE_SQL, 2, model_args), values, SPI_OK_SELECT);
		}
	}
}

static ArrayType *StatementCustomers(TriggerData *trigdata);

/*
 * Rescore under every active model the customers of ids, or those of the
 * statement a trigger fired for (collected only when some model is active).
 */
static void
Rescore(ArrayType *ids, TriggerData *trigdata)
{
	SPI_connect();
	rescore_depth++;
	PG_TRY();
	{
		ActiveModel *models;
		int			nmodels = ActiveModels(&models);
		ArrayType  *customers = NULL;

		if (nmodels > 0)
			customers = trigdata != NULL ? StatementCustomers(trigdata) : ids;
		if (customers != NULL)
			RescoreUnder(models, nmodels, customers);
	}
	PG_FINALLY();
	{
		rescore_depth--;
	}
	PG_END_TRY();
	SPI_finish();
}

/* Rescore customers under every active scoring model. */
PG_FUNCTION_INFO_V1(ecrm_rescore);
Datum
ecrm_rescore(PG_FUNCTION_ARGS)
{
	ArrayType  *ids = PG_GETARG_ARRAYTYPE_P(0);

	if (ecrm_score_on_write && ArrayGetNItems(ARR_NDIM(ids), ARR_DIMS(ids)) > 0)
		Rescore(ids, NULL);
	PG_RETURN_VOID();
}

static int
CompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* Sort ids[0..n) and drop repeats; returns the new count. */
static int
SortUnique(int64 *ids, int n)
{
	int			k = 0;

	qsort(ids, n, sizeof(int64), CompareInt64);
	for (int i = 0; i < n; i++)
		if (k == 0 || ids[i] != ids[k - 1])
			ids[k++] = ids[i];
	return k;
}

/* Add the customer ids of a transition table to ids[*n] (distinct once sorted), growing it as needed. */
static int64 *
TransitionCustomers(Tuplestorestate *rows, TupleDesc desc, AttrNumber attnum, int64 *ids, int *n, int *cap)
{
	TupleTableSlot *slot;
	int			ptr;
	uint64		seen = 0;

	if (rows == NULL)
		return ids;
	/* a read pointer of our own, as a scan of the transition table in a query would take */
	ptr = tuplestore_alloc_read_pointer(rows, EXEC_FLAG_REWIND);
	tuplestore_copy_read_pointer(rows, 0, ptr);
	tuplestore_select_read_pointer(rows, ptr);
	tuplestore_rescan(rows);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	while (tuplestore_gettupleslot(rows, true, false, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, attnum, &isnull);

		if ((++seen & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
		if (isnull)
			continue;
		if (*n == *cap)
		{
			/* a statement repeats customers: drop repeats before growing */
			*n = SortUnique(ids, *n);
			if (*n > *cap / 2)
			{
				if ((Size) *cap * 2 > MaxArraySize)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("too many customers in one statement to rescore them (more than %d)", *cap),
							 errhint("Set ecrm.score_on_write off for a load this size and run ecrm.refresh_lead_scores() after it.")));
				*cap *= 2;
				ids = repalloc_huge(ids, sizeof(int64) * *cap);
			}
		}
		ids[(*n)++] = DatumGetInt64(d);
	}
	ExecDropSingleTupleTableSlot(slot);
	return ids;
}

/* The distinct customers of the rows a statement wrote, as a bigint[]; NULL when none. */
static ArrayType *
StatementCustomers(TriggerData *trigdata)
{
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	AttrNumber	attnum = SPI_fnumber(desc, "customer_id");
	int64	   *ids;
	int			n = 0;
	int			cap = 64;
	Datum	   *elems;

	if (attnum <= 0 || TupleDescAttr(desc, attnum - 1)->atttypid != INT8OID)
		elog(ERROR, "table \"%s\" has no bigint column customer_id", RelationGetRelationName(trigdata->tg_relation));
	ids = palloc(sizeof(int64) * cap);
	ids = TransitionCustomers(trigdata->tg_oldtable, desc, attnum, ids, &n, &cap);
	ids = TransitionCustomers(trigdata->tg_newtable, desc, attnum, ids, &n, &cap);
	if (n == 0)
		return NULL;
	n = SortUnique(ids, n);
	elems = palloc_extended(sizeof(Datum) * n, MCXT_ALLOC_HUGE);
	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/*
 * Statement trigger on interactions and campaign events: rescore the customers
 * the statement touched.  Stands aside while a dump is restored (as
 * ecrm._restoring() tells) and when ecrm.score_on_write is off.
 */
PG_FUNCTION_INFO_V1(ecrm_lead_score_on_events);
Datum
ecrm_lead_score_on_events(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		elog(ERROR, "ecrm_lead_score_on_events must be fired by an AFTER ... FOR EACH STATEMENT trigger");
	if (!ecrm_restoring && check_function_bodies && ecrm_score_on_write)
		Rescore(NULL, trigdata);
	return PointerGetDatum(NULL);
}
