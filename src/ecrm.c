/*
 * ecrm.c — module magic, _PG_init and the GUCs of ecrm.  Nothing else.
 */
#include "postgres.h"

#include "ecrm.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

char	   *ecrm_default_country = NULL;
double		ecrm_progress_interval = 5.0;
char	   *ecrm_lifecycle_reason = NULL;

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

	DefineCustomRealVariable("ecrm.progress_interval",
							 "Seconds between progress notices of long model builds.",
							 "Builds report at each tenth of their work when at least this many seconds passed since the last report; 0 reports every tenth.",
							 &ecrm_progress_interval,
							 5.0, 0.0, 86400.0,
							 PGC_USERSET,
							 GUC_UNIT_S,
							 NULL, NULL, NULL);

	/* set by the API around lifecycle changes; the reserved prefix needs it defined */
	DefineCustomStringVariable("ecrm.lifecycle_reason",
							   "Reason recorded with lifecycle changes made in this transaction.",
							   NULL,
							   &ecrm_lifecycle_reason,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("ecrm");
}
