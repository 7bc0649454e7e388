/*
 * lineage.c — column lineage of views: for each output column of a view,
 * the table columns its values are computed from.
 *
 * The masked views (97_masked_views.sql) are generated from this: a view
 * column that is a plain copy of a table column gets that column's masking
 * policy; a column computed from personal columns in any other way (a
 * concatenation, an aggregate, a JSON document) is left out unless a policy
 * names it.  Lineage follows the view's stored query tree through
 * subqueries, joins, set operations, CTEs, function and VALUES lists,
 * sub-selects in the target list, and other views, down to tables.  Only the
 * target list counts: WHERE and GROUP BY decide which rows appear, not what
 * a value is.
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "ecrm.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "rewrite/prs2lock.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#define LINEAGE_MAX_DEPTH	200

/* The chain of queries a Var's varlevelsup counts through, innermost first. */
typedef struct QStack
{
	Query	   *q;
	struct QStack *up;
} QStack;

typedef struct Source
{
	Oid			relid;
	AttrNumber	attno;			/* 0: the whole row */
} Source;

typedef struct LineageCtx
{
	QStack	   *stack;
	List	   *sources;		/* of Source * */
	List	   *views;			/* OIDs of views being expanded (recursion guard) */
	List	   *ctes;			/* CTEs being expanded */
	int			depth;
} LineageCtx;

static bool LineageWalker(Node *node, LineageCtx *ctx);
static void ResolveQueryColumn(LineageCtx *ctx, QStack *parent, Query *q, AttrNumber attno);

static void
AddSource(LineageCtx *ctx, Oid relid, AttrNumber attno)
{
	ListCell   *lc;
	Source	   *s;

	foreach(lc, ctx->sources)
	{
		s = (Source *) lfirst(lc);
		if (s->relid == relid && s->attno == attno)
			return;
	}
	s = palloc(sizeof(Source));
	s->relid = relid;
	s->attno = attno;
	ctx->sources = lappend(ctx->sources, s);
}

static void
EnterLevel(LineageCtx *ctx)
{
	check_stack_depth();
	CHECK_FOR_INTERRUPTS();
	if (++ctx->depth > LINEAGE_MAX_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("view is nested too deeply to trace its columns"),
				 errdetail("ecrm follows at most %d levels of views and subqueries.", LINEAGE_MAX_DEPTH)));
}

/* The SELECT rule's query of a view or materialized view. */
static Query *
RelationQuery(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	Query	   *q = NULL;

	if (rel->rd_rules != NULL)
	{
		for (int i = 0; i < rel->rd_rules->numLocks; i++)
		{
			RewriteRule *rule = rel->rd_rules->rules[i];

			if (rule->event == CMD_SELECT && list_length(rule->actions) == 1)
			{
				q = copyObject(linitial_node(Query, rule->actions));
				break;
			}
		}
	}
	relation_close(rel, NoLock);
	if (q == NULL)
		elog(ERROR, "could not find the query of view %u", relid);
	return q;
}

/* Walk an expression as seen from the query at level. */
static void
WalkAt(LineageCtx *ctx, QStack *level, Node *expr)
{
	QStack	   *saved = ctx->stack;

	ctx->stack = level;
	LineageWalker(expr, ctx);
	ctx->stack = saved;
}

/* Resolve column attno of range-table entry rte of the query at level. */
static void
ResolveRte(LineageCtx *ctx, QStack *level, RangeTblEntry *rte, AttrNumber attno)
{
	ListCell   *lc;

	if (attno < 0)
		return;					/* system columns hold no user data */
	EnterLevel(ctx);
	switch (rte->rtekind)
	{
		case RTE_RELATION:
			{
				char		relkind = get_rel_relkind(rte->relid);

				if ((relkind == RELKIND_VIEW || relkind == RELKIND_MATVIEW) &&
					!list_member_oid(ctx->views, rte->relid))
				{
					Query	   *vq = RelationQuery(rte->relid);

					ctx->views = lappend_oid(ctx->views, rte->relid);
					ResolveQueryColumn(ctx, NULL, vq, attno);
					ctx->views = list_delete_last(ctx->views);
				}
				else
					AddSource(ctx, rte->relid, attno);
				break;
			}
		case RTE_SUBQUERY:
			ResolveQueryColumn(ctx, level, rte->subquery, attno);
			break;
		case RTE_JOIN:
			if (attno == 0)
				WalkAt(ctx, level, (Node *) rte->joinaliasvars);
			else if (attno <= list_length(rte->joinaliasvars))
				WalkAt(ctx, level, (Node *) list_nth(rte->joinaliasvars, attno - 1));
			break;
		case RTE_FUNCTION:
			foreach(lc, rte->functions)
				WalkAt(ctx, level, ((RangeTblFunction *) lfirst(lc))->funcexpr);
			break;
		case RTE_TABLEFUNC:
			WalkAt(ctx, level, (Node *) rte->tablefunc);
			break;
		case RTE_VALUES:
			foreach(lc, rte->values_lists)
			{
				List	   *row = (List *) lfirst(lc);

				if (attno == 0)
					WalkAt(ctx, level, (Node *) row);
				else if (attno <= list_length(row))
					WalkAt(ctx, level, (Node *) list_nth(row, attno - 1));
			}
			break;
		case RTE_CTE:
			{
				QStack	   *owner = level;

				for (Index i = 0; i < rte->ctelevelsup && owner != NULL; i++)
					owner = owner->up;
				if (owner == NULL)
					elog(ERROR, "CTE \"%s\" has no owning query", rte->ctename);
				foreach(lc, owner->q->cteList)
				{
					CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

					if (strcmp(cte->ctename, rte->ctename) != 0)
						continue;
					if (list_member_ptr(ctx->ctes, cte))
						break;	/* a recursive reference: its sources are already being collected */
					ctx->ctes = lappend(ctx->ctes, cte);
					ResolveQueryColumn(ctx, owner, castNode(Query, cte->ctequery), attno);
					ctx->ctes = list_delete_last(ctx->ctes);
					break;
				}
				break;
			}
		default:
			/* RTE_RESULT and tuplestores: no columns of ours */
			break;
	}
	ctx->depth--;
}

/* Every leaf of a set operation tree. */
static void
SetOpLeaves(Node *node, List **leaves)
{
	if (IsA(node, RangeTblRef))
		*leaves = lappend_int(*leaves, ((RangeTblRef *) node)->rtindex);
	else if (IsA(node, SetOperationStmt))
	{
		SetOpLeaves(((SetOperationStmt *) node)->larg, leaves);
		SetOpLeaves(((SetOperationStmt *) node)->rarg, leaves);
	}
}

/* Resolve output column attno (0: all of them) of query q, a sub-query of parent. */
static void
ResolveQueryColumn(LineageCtx *ctx, QStack *parent, Query *q, AttrNumber attno)
{
	QStack		frame;
	ListCell   *lc;

	frame.q = q;
	frame.up = parent;
	EnterLevel(ctx);
	if (q->setOperations != NULL)
	{
		List	   *leaves = NIL;

		SetOpLeaves(q->setOperations, &leaves);
		foreach(lc, leaves)
			ResolveRte(ctx, &frame, rt_fetch(lfirst_int(lc), q->rtable), attno);
	}
	else
	{
		foreach(lc, q->targetList)
		{
			TargetEntry *tle = lfirst_node(TargetEntry, lc);

			if (!tle->resjunk && (attno == 0 || tle->resno == attno))
				WalkAt(ctx, &frame, (Node *) tle->expr);
		}
	}
	ctx->depth--;
}

static bool
LineageWalker(Node *node, LineageCtx *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;
		QStack	   *level = ctx->stack;

		for (Index i = 0; i < var->varlevelsup && level != NULL; i++)
			level = level->up;
		if (level == NULL || var->varno < 1 || var->varno > list_length(level->q->rtable))
			elog(ERROR, "could not resolve a column reference of a view");
		ResolveRte(ctx, level, rt_fetch(var->varno, level->q->rtable), var->varattno);
		return false;
	}
	if (IsA(node, Query))
	{
		/* a sub-select: what it returns */
		ResolveQueryColumn(ctx, ctx->stack, (Query *) node, 0);
		return false;
	}
	return expression_tree_walker(node, LineageWalker, (void *) ctx);
}

/*
 * Whether expr (seen from level) is a plain copy of one table column, through
 * any number of views, subqueries, joins and CTEs; if so, which.
 */
static bool
DirectSource(LineageCtx *ctx, QStack *level, Node *expr, Oid *relid, AttrNumber *attno)
{
	Var		   *var;
	RangeTblEntry *rte;
	bool		result = false;

	while (expr != NULL && IsA(expr, RelabelType))
		expr = (Node *) ((RelabelType *) expr)->arg;
	if (expr == NULL || !IsA(expr, Var))
		return false;
	var = (Var *) expr;
	if (var->varattno <= 0)
		return false;
	for (Index i = 0; i < var->varlevelsup && level != NULL; i++)
		level = level->up;
	if (level == NULL || var->varno < 1 || var->varno > list_length(level->q->rtable))
		return false;
	rte = rt_fetch(var->varno, level->q->rtable);
	EnterLevel(ctx);
	switch (rte->rtekind)
	{
		case RTE_RELATION:
			{
				char		relkind = get_rel_relkind(rte->relid);

				if (relkind == RELKIND_VIEW || relkind == RELKIND_MATVIEW)
				{
					Query	   *vq = RelationQuery(rte->relid);
					QStack		frame = {vq, NULL};
					TargetEntry *tle = vq->setOperations ? NULL : get_tle_by_resno(vq->targetList, var->varattno);

					result = tle != NULL && DirectSource(ctx, &frame, (Node *) tle->expr, relid, attno);
				}
				else
				{
					*relid = rte->relid;
					*attno = var->varattno;
					result = true;
				}
				break;
			}
		case RTE_SUBQUERY:
			{
				QStack		frame = {rte->subquery, level};
				TargetEntry *tle = rte->subquery->setOperations ? NULL :
					get_tle_by_resno(rte->subquery->targetList, var->varattno);

				result = tle != NULL && DirectSource(ctx, &frame, (Node *) tle->expr, relid, attno);
				break;
			}
		case RTE_JOIN:
			if (var->varattno <= list_length(rte->joinaliasvars))
				result = DirectSource(ctx, level, (Node *) list_nth(rte->joinaliasvars, var->varattno - 1),
									  relid, attno);
			break;
		default:
			break;
	}
	ctx->depth--;
	return result;
}

/*
 * ecrm.view_column_sources(view regclass): one row per output column of a
 * view and table column it is computed from (column_name, source_table,
 * source_column — NULL for a whole-row reference —, direct — the view column
 * is a plain copy of it); a column computed from no table column (a constant,
 * now(), count(*)) has one row with NULL source.
 */
PG_FUNCTION_INFO_V1(ecrm_view_column_sources);
Datum
ecrm_view_column_sources(PG_FUNCTION_ARGS)
{
	Oid			viewid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		relkind = get_rel_relkind(viewid);
	Relation	rel;
	TupleDesc	desc;
	Query	   *vq;
	MemoryContext scratch,
				old;

	if (relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a view", relkind == '\0' ? "(unknown)" : get_rel_name(viewid)),
				 errhint("Column sources are traced for views and materialized views.")));
	InitMaterializedSRF(fcinfo, 0);
	rel = relation_open(viewid, AccessShareLock);
	desc = CreateTupleDescCopy(RelationGetDescr(rel));
	relation_close(rel, NoLock);

	scratch = AllocSetContextCreate(CurrentMemoryContext, "ecrm view lineage", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(scratch);
	vq = RelationQuery(viewid);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		LineageCtx	ctx = {0};
		TargetEntry *tle;
		Oid			direct_rel = InvalidOid;
		AttrNumber	direct_att = 0;
		bool		direct = false;
		ListCell   *lc;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		if (att->attisdropped)
			continue;
		ctx.views = list_make1_oid(viewid);
		ResolveQueryColumn(&ctx, NULL, vq, att->attnum);
		tle = vq->setOperations ? NULL : get_tle_by_resno(vq->targetList, att->attnum);
		if (tle != NULL)
		{
			QStack		frame = {vq, NULL};

			direct = DirectSource(&ctx, &frame, (Node *) tle->expr, &direct_rel, &direct_att);
		}

		values[0] = NameGetDatum(&att->attname);
		if (ctx.sources == NIL)
		{
			nulls[1] = nulls[2] = true;
			values[3] = BoolGetDatum(false);
			MemoryContextSwitchTo(old);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			MemoryContextSwitchTo(scratch);
			continue;
		}
		foreach(lc, ctx.sources)
		{
			Source	   *s = (Source *) lfirst(lc);
			char	   *attname = s->attno > 0 ? get_attname(s->relid, s->attno, true) : NULL;

			values[1] = ObjectIdGetDatum(s->relid);
			nulls[2] = (attname == NULL);
			values[2] = attname ? CStringGetDatum(attname) : (Datum) 0;
			if (attname)
			{
				Name		n = palloc0(NAMEDATALEN);

				namestrcpy(n, attname);
				values[2] = NameGetDatum(n);
			}
			values[3] = BoolGetDatum(direct && list_length(ctx.sources) == 1 &&
									 s->relid == direct_rel && s->attno == direct_att);
			MemoryContextSwitchTo(old);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			MemoryContextSwitchTo(scratch);
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
	return (Datum) 0;
}
