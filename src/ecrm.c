/*
 * ecrm.c — module magic, _PG_init and the GUCs of ecrm.  Nothing else.
 */
#include "postgres.h"

#include "ecrm.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

char	   *ecrm_default_country = NULL;
int			ecrm_realtime_resolution = ECRM_RESOLVE_MERGE;
char	   *ecrm_lifecycle_reason = NULL;

static const struct config_enum_entry realtime_resolution_options[] = {
	{"off", ECRM_RESOLVE_OFF, false},
	{"review", ECRM_RESOLVE_REVIEW, false},
	{"merge", ECRM_RESOLVE_MERGE, false},
	{NULL, 0, false}
};

void		_PG_init(void);

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

void
_PG_init(void)
{
	DefineCustomStringVariable("ecrm.default_country",
							   "Country assumed for phone numbers written without a country code.",
							   "An ISO 3166-1 alpha-2 code such as GB or DE; empty means such numbers are rejected.",
							   &ecrm_default_country,
							   "",
							   PGC_USERSET,
							   0,
							   CheckDefaultCountry, NULL, NULL);

	DefineCustomEnumVariable("ecrm.realtime_resolution",
							 "What ecrm.upsert_customer does with a profile that looks like an existing one.",
							 "off: nothing; review: queue likely duplicates for review; merge: also merge a profile above the auto-merge threshold of the customer model.",
							 &ecrm_realtime_resolution,
							 ECRM_RESOLVE_MERGE,
							 realtime_resolution_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("ecrm.lifecycle_reason",
							   "Reason recorded with the lifecycle changes of this session or transaction.",
							   "Written to ecrm.lifecycle_change.reason; merges set it to \"merge N\" while they run.",
							   &ecrm_lifecycle_reason,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("ecrm");
}
