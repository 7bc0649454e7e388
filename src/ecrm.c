/*
 * ecrm.c — module magic, _PG_init and the GUCs of ecrm.  Nothing else.
 */
#include "postgres.h"

#include <limits.h>

#include "ecrm.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

PG_MODULE_MAGIC;

char	   *ecrm_default_country = NULL;
char	   *ecrm_lifecycle_reason = NULL;
bool		ecrm_segment_realtime = true;
bool		ecrm_restoring = false;
char	   *ecrm_lead_score_model = NULL;
char	   *ecrm_conversion_model = NULL;
bool		ecrm_score_on_write = true;
char	   *ecrm_pseudonym_key = NULL;
int			ecrm_realtime_resolution = ECRM_RESOLVE_MERGE;

static const struct config_enum_entry realtime_resolution_options[] = {
	{"off", ECRM_RESOLVE_OFF, false},
	{"review", ECRM_RESOLVE_REVIEW, false},
	{"merge", ECRM_RESOLVE_MERGE, false},
	{NULL, 0, false}
};
int			ecrm_idset_max_memory = 1024 * 1024;	/* kB */
double		ecrm_progress_interval = 5.0;

void		_PG_init(void);

/*
 * This library is loaded lazily, at the first call of one of its functions,
 * and that call may come inside a parallel operation: a C function reached
 * through a SQL or PL/pgSQL function of a parallel plan, an expression index
 * built by parallel workers, or a worker whose leader had not loaded ecrm yet.
 * Defining a GUC then has to apply the value its placeholder already holds
 * (postgresql.conf, ALTER SYSTEM, a SET made before the load), and PostgreSQL
 * refuses to set parameters in parallel mode: the value was lost with only a
 * WARNING, and the process kept the default for the rest of its life (an
 * empty ecrm.pseudonym_key).  Applying the placeholder's value changes
 * nothing another process could disagree with, since this process already
 * had that value and workers get theirs from the leader, so the definitions
 * carry GUC_ALLOW_IN_PARALLEL while _PG_init runs.  Afterwards the flag is
 * taken off again: a SET of an ecrm setting inside a parallel operation
 * would change one process only, and must keep failing.
 */
#ifdef GUC_ALLOW_IN_PARALLEL
#define ECRM_GUC_LOAD_FLAGS GUC_ALLOW_IN_PARALLEL
#else
#define ECRM_GUC_LOAD_FLAGS 0
#endif

/* Take GUC_ALLOW_IN_PARALLEL off the settings of ecrm once they are defined. */
static void
ForbidSettingInParallel(void)
{
#ifdef GUC_ALLOW_IN_PARALLEL
#if PG_VERSION_NUM >= 160000
	int			n;
	struct config_generic **vars = get_guc_variables(&n);
#else
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
#endif

	for (int i = 0; i < n; i++)
	{
		if (strncmp(vars[i]->name, "ecrm.", 5) == 0)
			vars[i]->flags &= ~GUC_ALLOW_IN_PARALLEL;
	}
#endif
}

/* Accept an ISO 3166-1 alpha-2 code that ecrm knows a calling code for. */
static bool
CheckDefaultCountry(char **newval, void **extra, GucSource source)
{
	char	   *v = *newval;

	if (v == NULL || v[0] == '\0')
		return true;
	if (strlen(v) != 2 || EcrmCountryCallingCode(v) == NULL)
	{
		GUC_check_errdetail("\"%s\" is not an ISO 3166-1 alpha-2 country code known to ecrm.", v);
		return false;
	}
	/* Store upper case so comparisons need not care. */
	v[0] = pg_ascii_toupper((unsigned char) v[0]);
	v[1] = pg_ascii_toupper((unsigned char) v[1]);
	return true;
}

/*
 * The pseudonym key must not be stored where every role can read it:
 * ALTER DATABASE/ROLE ... SET keep it in pg_db_role_setting and a function's
 * SET clause in pg_proc, both readable by PUBLIC.  Those are validated with
 * source PGC_S_TEST and applied with the database/user sources.  The message
 * is our own so that it never quotes the value.
 */
static bool
CheckPseudonymKey(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (source == PGC_S_TEST || source == PGC_S_DATABASE || source == PGC_S_USER ||
		source == PGC_S_DATABASE_USER)
	{
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("ecrm.pseudonym_key cannot be stored with ALTER DATABASE, ALTER ROLE or a function's SET clause");
		GUC_check_errdetail("Those settings are kept in pg_db_role_setting or pg_proc, which every role can read.");
		GUC_check_errhint("Set it in postgresql.conf or with ALTER SYSTEM, then reload; if it was stored that way, remove it with RESET and choose a new key.");
		return false;
	}
	return true;
}

void
_PG_init(void)
{
	DefineCustomStringVariable("ecrm.default_country",
							   "Country assumed for phone numbers written without a country code.",
							   "An ISO 3166-1 alpha-2 code such as GB or DE; empty means such numbers are rejected.",
							   &ecrm_default_country,
							   "",
							   PGC_USERSET,
							   ECRM_GUC_LOAD_FLAGS,
							   CheckDefaultCountry, NULL, NULL);

	DefineCustomBoolVariable("ecrm.segment_realtime",
							 "Keeps segment memberships current as interactions, orders and profiles change.",
							 "Turn off for a bulk load, then call ecrm.refresh_segments().",
							 &ecrm_segment_realtime,
							 true,
							 PGC_USERSET,
							 ECRM_GUC_LOAD_FLAGS,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ecrm.idset_max_memory",
							"Most memory one idset may take while it is built or computed with.",
							"The roaring bitmap library allocates outside PostgreSQL's memory accounting; a set that would grow past this fails with an error instead.",
							&ecrm_idset_max_memory,
							1024 * 1024,
							1024,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_KB | ECRM_GUC_LOAD_FLAGS,
							NULL, NULL, NULL);

	/* Set (usually SET LOCAL) by whoever moves a customer along the lifecycle; the trigger records it. */
	DefineCustomStringVariable("ecrm.lifecycle_reason",
							   "Reason recorded with the next lifecycle stage changes in this session or transaction.",
							   NULL,
							   &ecrm_lifecycle_reason,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE | ECRM_GUC_LOAD_FLAGS,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("ecrm.lead_score_model",
							   "Name of the scoring model whose active version the leads view shows as score.",
							   NULL,
							   &ecrm_lead_score_model,
							   "default",
							   PGC_USERSET,
							   ECRM_GUC_LOAD_FLAGS,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("ecrm.conversion_model",
							   "Name of the predictive model whose active version the leads view shows as conversion_probability.",
							   NULL,
							   &ecrm_conversion_model,
							   "conversion",
							   PGC_USERSET,
							   ECRM_GUC_LOAD_FLAGS,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("ecrm.score_on_write",
							 "Rescore leads in ecrm.lead_score as their interactions, campaign events and profiles are written.",
							 "Turn off for a bulk load and run ecrm.refresh_lead_scores() after it.",
							 &ecrm_score_on_write,
							 true,
							 PGC_USERSET,
							 ECRM_GUC_LOAD_FLAGS,
							 NULL, NULL, NULL);

	/*
	 * Restoring a dump: triggers that enforce workflows or maintain derived
	 * data stand aside (see ecrm._restoring()).  pg_dump output runs with
	 * check_function_bodies = off, which ecrm also takes as this signal.
	 */
	DefineCustomBoolVariable("ecrm.restoring",
							 "Tells ecrm's triggers that a dump is being restored, so restored rows are taken as they are.",
							 "Set it for restores that do not run with check_function_bodies = off, as pg_dump's output does.",
							 &ecrm_restoring,
							 false,
							 PGC_USERSET,
							 ECRM_GUC_LOAD_FLAGS,
							 NULL, NULL, NULL);
	/* Superuser-only: SHOW, current_setting() and pg_settings hide it from everyone else. */
	DefineCustomStringVariable("ecrm.pseudonym_key",
							   "Secret key of ecrm's pseudonyms and keyed noise (HMAC-SHA256).",
							   "At least 16 bytes; changing it changes every pseudonym.",
							   &ecrm_pseudonym_key,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | ECRM_GUC_LOAD_FLAGS,
							   CheckPseudonymKey, NULL, NULL);

	DefineCustomEnumVariable("ecrm.realtime_resolution",
							 "What ecrm.upsert_customer does with a profile that looks like an existing one.",
							 "off: nothing; review: queue likely duplicates for review; merge: also merge a profile above the auto-merge threshold of the customer model.",
							 &ecrm_realtime_resolution,
							 ECRM_RESOLVE_MERGE,
							 realtime_resolution_options,
							 PGC_USERSET,
							 ECRM_GUC_LOAD_FLAGS,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("ecrm.progress_interval",
							 "Seconds between progress notices of long model builds.",
							 "Builds report at each tenth of their work when at least this many seconds passed since the last report; 0 reports every tenth.",
							 &ecrm_progress_interval,
							 5.0, 0.0, 86400.0,
							 PGC_USERSET,
							 GUC_UNIT_S | ECRM_GUC_LOAD_FLAGS,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("ecrm");
	ForbidSettingInParallel();
}
