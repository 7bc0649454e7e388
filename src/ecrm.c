/*
 * ecrm.c — module magic, _PG_init and the GUCs of ecrm.  Nothing else.
 */
#include "postgres.h"

#include <limits.h>

#include "ecrm.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

char	   *ecrm_default_country = NULL;
char	   *ecrm_lifecycle_reason = NULL;
bool		ecrm_segment_realtime = true;
int			ecrm_idset_max_memory = 1024 * 1024;	/* kB */

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

	DefineCustomBoolVariable("ecrm.segment_realtime",
							 "Keeps segment memberships current as interactions, orders and profiles change.",
							 "Turn off for a bulk load, then call ecrm.refresh_segments().",
							 &ecrm_segment_realtime,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ecrm.idset_max_memory",
							"Most memory one idset may take while it is built or computed with.",
							"The roaring bitmap library allocates outside PostgreSQL's memory accounting; a set that would grow past this fails with an error instead.",
							&ecrm_idset_max_memory,
							1024 * 1024,
							1024,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	/* Set (usually SET LOCAL) by whoever moves a customer along the lifecycle; the trigger records it. */
	DefineCustomStringVariable("ecrm.lifecycle_reason",
							   "Reason recorded with the next lifecycle stage changes in this session or transaction.",
							   NULL,
							   &ecrm_lifecycle_reason,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("ecrm");
}
