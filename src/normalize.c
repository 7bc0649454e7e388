/*
 * normalize.c — canonical forms of emails and phone numbers.
 *
 * Identities are unique per kind and normalised value, so these functions
 * decide when two spellings are one identity.  Both return NULL for a value
 * that cannot be an email or a phone number: they are meant to run over
 * dirty tables, and the ingestion API turns NULL into an error that names
 * the field.
 *
 * Phones: a compact own implementation rather than Debian's libphonenumber.
 * libphonenumber is C++ (exceptions and its own allocator inside a backend),
 * and ecrm needs only the E.164 form and the calling code, not per-range
 * validation or formatting.  We know every ITU calling code, each country's
 * trunk prefix and the international call prefixes; we check lengths
 * (E.164: at most 15 digits) but not which number ranges are assigned.
 */
#include "postgres.h"

#include "ecrm.h"
#include "mb/pg_wchar.h"

typedef struct CountryPhone
{
	const char *iso2;
	const char *cc;				/* calling code, digits */
	const char *trunk;			/* national (trunk) prefix, "" when none */
} CountryPhone;

/* ISO 3166-1 alpha-2 -> ITU calling code and trunk prefix, sorted by iso2. */
static const CountryPhone countries[] = {
	{"AD", "376", ""}, {"AE", "971", "0"}, {"AF", "93", "0"}, {"AG", "1", "1"},
	{"AI", "1", "1"}, {"AL", "355", "0"}, {"AM", "374", "0"}, {"AO", "244", "0"},
	{"AR", "54", "0"}, {"AS", "1", "1"}, {"AT", "43", "0"}, {"AU", "61", "0"},
	{"AW", "297", ""}, {"AX", "358", "0"}, {"AZ", "994", "0"}, {"BA", "387", "0"},
	{"BB", "1", "1"}, {"BD", "880", "0"}, {"BE", "32", "0"}, {"BF", "226", ""},
	{"BG", "359", "0"}, {"BH", "973", ""}, {"BI", "257", ""}, {"BJ", "229", ""},
	{"BL", "590", "0"}, {"BM", "1", "1"}, {"BN", "673", ""}, {"BO", "591", "0"},
	{"BQ", "599", ""}, {"BR", "55", "0"}, {"BS", "1", "1"}, {"BT", "975", ""},
	{"BW", "267", ""}, {"BY", "375", "8"}, {"BZ", "501", ""}, {"CA", "1", "1"},
	{"CC", "61", "0"}, {"CD", "243", "0"}, {"CF", "236", ""}, {"CG", "242", ""},
	{"CH", "41", "0"}, {"CI", "225", ""}, {"CK", "682", ""}, {"CL", "56", ""},
	{"CM", "237", ""}, {"CN", "86", "0"}, {"CO", "57", "0"}, {"CR", "506", ""},
	{"CU", "53", "0"}, {"CV", "238", ""}, {"CW", "599", ""}, {"CX", "61", "0"},
	{"CY", "357", ""}, {"CZ", "420", ""}, {"DE", "49", "0"}, {"DJ", "253", ""},
	{"DK", "45", ""}, {"DM", "1", "1"}, {"DO", "1", "1"}, {"DZ", "213", "0"},
	{"EC", "593", "0"}, {"EE", "372", ""}, {"EG", "20", "0"}, {"EH", "212", "0"},
	{"ER", "291", "0"}, {"ES", "34", ""}, {"ET", "251", "0"}, {"FI", "358", "0"},
	{"FJ", "679", ""}, {"FK", "500", ""}, {"FM", "691", ""}, {"FO", "298", ""},
	{"FR", "33", "0"}, {"GA", "241", ""}, {"GB", "44", "0"}, {"GD", "1", "1"},
	{"GE", "995", "0"}, {"GF", "594", "0"}, {"GG", "44", "0"}, {"GH", "233", "0"},
	{"GI", "350", ""}, {"GL", "299", ""}, {"GM", "220", ""}, {"GN", "224", ""},
	{"GP", "590", "0"}, {"GQ", "240", ""}, {"GR", "30", ""}, {"GT", "502", ""},
	{"GU", "1", "1"}, {"GW", "245", ""}, {"GY", "592", ""}, {"HK", "852", ""},
	{"HN", "504", ""}, {"HR", "385", "0"}, {"HT", "509", ""}, {"HU", "36", "06"},
	{"ID", "62", "0"}, {"IE", "353", "0"}, {"IL", "972", "0"}, {"IM", "44", "0"},
	{"IN", "91", "0"}, {"IO", "246", ""}, {"IQ", "964", "0"}, {"IR", "98", "0"},
	{"IS", "354", ""}, {"IT", "39", ""}, {"JE", "44", "0"}, {"JM", "1", "1"},
	{"JO", "962", "0"}, {"JP", "81", "0"}, {"KE", "254", "0"}, {"KG", "996", "0"},
	{"KH", "855", "0"}, {"KI", "686", ""}, {"KM", "269", ""}, {"KN", "1", "1"},
	{"KP", "850", "0"}, {"KR", "82", "0"}, {"KW", "965", ""}, {"KY", "1", "1"},
	{"KZ", "7", "8"}, {"LA", "856", "0"}, {"LB", "961", "0"}, {"LC", "1", "1"},
	{"LI", "423", ""}, {"LK", "94", "0"}, {"LR", "231", "0"}, {"LS", "266", ""},
	{"LT", "370", "8"}, {"LU", "352", ""}, {"LV", "371", ""}, {"LY", "218", "0"},
	{"MA", "212", "0"}, {"MC", "377", "0"}, {"MD", "373", "0"}, {"ME", "382", "0"},
	{"MF", "590", "0"}, {"MG", "261", "0"}, {"MH", "692", "1"}, {"MK", "389", "0"},
	{"ML", "223", ""}, {"MM", "95", "0"}, {"MN", "976", "0"}, {"MO", "853", ""},
	{"MP", "1", "1"}, {"MQ", "596", "0"}, {"MR", "222", ""}, {"MS", "1", "1"},
	{"MT", "356", ""}, {"MU", "230", ""}, {"MV", "960", ""}, {"MW", "265", "0"},
	{"MX", "52", ""}, {"MY", "60", "0"}, {"MZ", "258", ""}, {"NA", "264", "0"},
	{"NC", "687", ""}, {"NE", "227", ""}, {"NF", "672", ""}, {"NG", "234", "0"},
	{"NI", "505", ""}, {"NL", "31", "0"}, {"NO", "47", ""}, {"NP", "977", "0"},
	{"NR", "674", ""}, {"NU", "683", ""}, {"NZ", "64", "0"}, {"OM", "968", ""},
	{"PA", "507", ""}, {"PE", "51", "0"}, {"PF", "689", ""}, {"PG", "675", ""},
	{"PH", "63", "0"}, {"PK", "92", "0"}, {"PL", "48", ""}, {"PM", "508", "0"},
	{"PR", "1", "1"}, {"PS", "970", "0"}, {"PT", "351", ""}, {"PW", "680", ""},
	{"PY", "595", "0"}, {"QA", "974", ""}, {"RE", "262", "0"}, {"RO", "40", "0"},
	{"RS", "381", "0"}, {"RU", "7", "8"}, {"RW", "250", ""}, {"SA", "966", "0"},
	{"SB", "677", ""}, {"SC", "248", ""}, {"SD", "249", "0"}, {"SE", "46", "0"},
	{"SG", "65", ""}, {"SH", "290", ""}, {"SI", "386", "0"}, {"SJ", "47", ""},
	{"SK", "421", "0"}, {"SL", "232", "0"}, {"SM", "378", ""}, {"SN", "221", ""},
	{"SO", "252", "0"}, {"SR", "597", ""}, {"SS", "211", "0"}, {"ST", "239", ""},
	{"SV", "503", ""}, {"SX", "1", "1"}, {"SY", "963", "0"}, {"SZ", "268", ""},
	{"TC", "1", "1"}, {"TD", "235", ""}, {"TG", "228", ""}, {"TH", "66", "0"},
	{"TJ", "992", "8"}, {"TK", "690", ""}, {"TL", "670", ""}, {"TM", "993", "8"},
	{"TN", "216", ""}, {"TO", "676", ""}, {"TR", "90", "0"}, {"TT", "1", "1"},
	{"TV", "688", ""}, {"TW", "886", "0"}, {"TZ", "255", "0"}, {"UA", "380", "0"},
	{"UG", "256", "0"}, {"US", "1", "1"}, {"UY", "598", "0"}, {"UZ", "998", "8"},
	{"VA", "39", ""}, {"VC", "1", "1"}, {"VE", "58", "0"}, {"VG", "1", "1"},
	{"VI", "1", "1"}, {"VN", "84", "0"}, {"VU", "678", ""}, {"WF", "681", ""},
	{"WS", "685", ""}, {"XK", "383", "0"}, {"YE", "967", "0"}, {"YT", "262", "0"},
	{"ZA", "27", "0"}, {"ZM", "260", "0"}, {"ZW", "263", "0"},
};

/* Calling codes that belong to no country (freephone, satellite, ...). */
static const char *const nongeographic_cc[] = {
	"800", "808", "870", "878", "881", "882", "883", "888", "979"
};

#define MIN_E164_DIGITS 7
#define MAX_E164_DIGITS 15
/* Input longer than this cannot be a phone number, however it is spelled. */
#define MAX_PHONE_INPUT 64

static const CountryPhone *
FindCountry(const char *iso2)
{
	int			lo = 0,
				hi = lengthof(countries) - 1;
	char		key[3];

	if (iso2 == NULL || strlen(iso2) != 2)
		return NULL;
	key[0] = pg_ascii_toupper((unsigned char) iso2[0]);
	key[1] = pg_ascii_toupper((unsigned char) iso2[1]);
	key[2] = '\0';
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(key, countries[mid].iso2);

		if (c == 0)
			return &countries[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *
EcrmCountryCallingCode(const char *iso2)
{
	const CountryPhone *c = FindCountry(iso2);

	return c ? c->cc : NULL;
}

/*
 * Calling codes by length and value, built from the tables above on first
 * use: masking and pseudonyms look one up for every row of a view.
 */
static bool calling_codes[4][1000];
static bool calling_codes_ready = false;

static void
BuildCallingCodes(void)
{
	for (int i = 0; i < (int) lengthof(countries); i++)
		calling_codes[strlen(countries[i].cc)][atoi(countries[i].cc)] = true;
	for (int i = 0; i < (int) lengthof(nongeographic_cc); i++)
		calling_codes[3][atoi(nongeographic_cc[i])] = true;
	calling_codes_ready = true;
}

static bool
IsCallingCode(const char *digits, int len)
{
	int			value = 0;

	if (!calling_codes_ready)
		BuildCallingCodes();
	for (int i = 0; i < len; i++)
	{
		if (digits[i] < '0' || digits[i] > '9')
			return false;
		value = value * 10 + (digits[i] - '0');
	}
	return len >= 1 && len <= 3 && calling_codes[len][value];
}

/*
 * Length of the calling code at the start of an E.164 digit string, or 0
 * when no calling code matches.  Calling codes are prefix-free, so the first
 * match is the only one.
 */
int
EcrmPhoneCountryCodeLength(const char *digits)
{
	int			n = strlen(digits);

	for (int len = 1; len <= 3 && len <= n; len++)
		if (IsCallingCode(digits, len))
			return len;
	return 0;
}

static inline bool
IsPhoneSeparator(unsigned char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' ||
		c == '/' || c == '\t';
}

/*
 * E.164 form ("+441632960983") of a phone number, or NULL when it cannot be
 * one.  default_country (ISO alpha-2, may be NULL or "") is used for numbers
 * written without a calling code.
 */
char *
EcrmNormalizePhone(const char *s, int len, const char *default_country)
{
	char		digits[MAX_PHONE_INPUT + 1];
	int			nd = 0;
	int			i = 0;
	bool		plus = false;
	char	   *result;
	int			cclen;

	/* trim */
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
					   s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	if (len - i > MAX_PHONE_INPUT)
		return NULL;
	if (len - i >= 4 && pg_strncasecmp(s + i, "tel:", 4) == 0)
		i += 4;
	if (i < len && s[i] == '+')
	{
		plus = true;
		i++;
	}

	for (; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= '0' && c <= '9')
			digits[nd++] = c;
		else if (c == '(' && i + 2 < len && s[i + 1] == '0' && s[i + 2] == ')' && plus)
			i += 2;				/* "+44 (0)20 ..." — the (0) is not dialled */
		else if (IsPhoneSeparator(c))
			continue;
		else if (c == 'x' || c == 'X' || c == '#' || c == ';' || c == ',' ||
				 ((c == 'e' || c == 'E') && i + 2 < len &&
				  pg_strncasecmp(s + i, "ext", 3) == 0))
			break;				/* an extension follows: not part of the number */
		else
			return NULL;
	}
	digits[nd] = '\0';
	if (nd == 0)
		return NULL;

	if (!plus)
	{
		const CountryPhone *home = FindCountry(default_country);
		const char *national = digits;

		/* International call prefixes: 00 nearly everywhere, 011 in NANP. */
		if (strncmp(digits, "00", 2) == 0 && nd > 2)
		{
			memmove(digits, digits + 2, nd - 1);
			nd -= 2;
		}
		else if (home && strcmp(home->cc, "1") == 0 && strncmp(digits, "011", 3) == 0)
		{
			memmove(digits, digits + 3, nd - 2);
			nd -= 3;
		}
		else
		{
			char		buf[MAX_PHONE_INPUT + 4];
			int			tl;

			if (home == NULL)
				return NULL;
			tl = strlen(home->trunk);
			if (tl > 0 && strncmp(national, home->trunk, tl) == 0)
				national += tl;
			snprintf(buf, sizeof(buf), "%s%s", home->cc, national);
			if (strlen(buf) > MAX_PHONE_INPUT)
				return NULL;
			strcpy(digits, buf);
			nd = strlen(digits);
		}
	}

	if (nd < MIN_E164_DIGITS || nd > MAX_E164_DIGITS || digits[0] == '0')
		return NULL;
	cclen = EcrmPhoneCountryCodeLength(digits);
	if (cclen == 0 || nd - cclen < 4)
		return NULL;

	result = palloc(nd + 2);
	result[0] = '+';
	memcpy(result + 1, digits, nd + 1);
	return result;
}

/* Providers that deliver "local+tag" to "local"; Gmail also ignores dots. */
static const char *const tag_providers[] = {
	"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com",
	"msn.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "outlook.de",
	"outlook.fr", "live.co.uk", "icloud.com", "me.com", "mac.com",
	"fastmail.com", "fastmail.fm", "protonmail.com", "protonmail.ch",
	"proton.me", "pm.me", "yandex.ru", "yandex.com",
};

static inline bool
IsAtext(unsigned char c)
{
	/* RFC 5322 atext, plus any non-ASCII byte (RFC 6531 internationalised) */
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 ||
		strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL;
}

/*
 * Canonical form of an email address, or NULL when it is not one: trimmed,
 * "mailto:" and angle brackets removed, lower case, a trailing dot of the
 * domain dropped, googlemail.com folded into gmail.com, and +tags (and for
 * Gmail dots) removed where the provider ignores them.  Non-ASCII letters are
 * kept as they are.
 */
char *
EcrmNormalizeEmail(const char *s, int len)
{
	char	   *buf;
	char	   *at;
	char	   *local;
	char	   *domain;
	int			start = 0;
	int			n;
	int			nlabels = 0;
	int			labellen = 0;
	bool		tld_alpha = false;

	while (start < len && (s[start] == ' ' || s[start] == '\t' ||
						   s[start] == '\n' || s[start] == '\r'))
		start++;
	while (len > start && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
						   s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len - start >= 7 && pg_strncasecmp(s + start, "mailto:", 7) == 0)
		start += 7;
	if (len - start >= 2 && s[start] == '<' && s[len - 1] == '>')
	{
		start++;
		len--;
	}
	n = len - start;
	if (n < 3 || n > 320)		/* 64 local + @ + 255 domain */
		return NULL;

	buf = palloc(n + 1);
	for (int i = 0; i < n; i++)
		buf[i] = pg_ascii_tolower((unsigned char) s[start + i]);
	buf[n] = '\0';

	at = strchr(buf, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return NULL;
	*at = '\0';
	local = buf;
	domain = at + 1;

	/* local part: dot-atom */
	n = strlen(local);
	if (n == 0 || n > 64 || local[0] == '.' || local[n - 1] == '.')
		return NULL;
	for (int i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) local[i];

		if (c == '.')
		{
			if (local[i + 1] == '.')
				return NULL;
		}
		else if (!IsAtext(c))
			return NULL;
	}

	/* domain: labels of letters, digits and hyphens; a TLD not all digits */
	n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		domain[--n] = '\0';
	if (n == 0 || n > 253)
		return NULL;
	for (int i = 0; i <= n; i++)
	{
		unsigned char c = (unsigned char) domain[i];

		if (c == '.' || c == '\0')
		{
			if (labellen == 0 || domain[i - 1] == '-')
				return NULL;
			nlabels++;
			labellen = 0;
			continue;
		}
		if (labellen == 0)
		{
			if (c == '-')
				return NULL;
			tld_alpha = false;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c >= 0x80))
			return NULL;
		if (!(c >= '0' && c <= '9'))
			tld_alpha = true;
		if (++labellen > 63)
			return NULL;
	}
	if (nlabels < 2 || !tld_alpha)
		return NULL;

	/* provider rules */
	if (strcmp(domain, "googlemail.com") == 0)
		domain = "gmail.com";
	for (int i = 0; i < (int) lengthof(tag_providers); i++)
	{
		if (strcmp(domain, tag_providers[i]) == 0)
		{
			char	   *plus = strchr(local, '+');

			if (plus != NULL && plus != local)
				*plus = '\0';
			if (strcmp(domain, "gmail.com") == 0)
			{
				char	   *w = local;

				for (char *r = local; *r; r++)
					if (*r != '.')
						*w++ = *r;
				*w = '\0';
				if (local[0] == '\0')
					return NULL;
			}
			break;
		}
	}

	return psprintf("%s@%s", local, domain);
}

/* Canonical form of an email address, NULL when it is not one. */
PG_FUNCTION_INFO_V1(ecrm_normalize_email);
Datum
ecrm_normalize_email(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *r;

	EcrmCheckFieldLength(t, "email");
	r = EcrmNormalizeEmail(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (r == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(r));
}

static Datum
NormalizePhoneDatum(FunctionCallInfo fcinfo, const char *country)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *r;

	EcrmCheckFieldLength(t, "phone");
	if (country != NULL && country[0] != '\0' && FindCountry(country) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown country code \"%s\"", country),
				 errhint("Use an ISO 3166-1 alpha-2 code such as GB or DE.")));
	r = EcrmNormalizePhone(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), country);
	if (r == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(r));
}

/* E.164 form of a phone number; national numbers use ecrm.default_country. */
PG_FUNCTION_INFO_V1(ecrm_normalize_phone);
Datum
ecrm_normalize_phone(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	return NormalizePhoneDatum(fcinfo, ecrm_default_country);
}

/* E.164 form of a phone number; national numbers use the given country. */
PG_FUNCTION_INFO_V1(ecrm_normalize_phone_in);
Datum
ecrm_normalize_phone_in(PG_FUNCTION_ARGS)
{
	char	   *country = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(1))
		country = text_to_cstring(PG_GETARG_TEXT_PP(1));
	return NormalizePhoneDatum(fcinfo, country);
}

/* Calling code ("44") of an international phone number, NULL if none. */
PG_FUNCTION_INFO_V1(ecrm_phone_country_code);
Datum
ecrm_phone_country_code(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *e164;
	int			cclen;

	EcrmCheckFieldLength(t, "phone");
	e164 = EcrmNormalizePhone(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), NULL);
	if (e164 == NULL)
		PG_RETURN_NULL();
	cclen = EcrmPhoneCountryCodeLength(e164 + 1);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(e164 + 1, cclen));
}

/* Calling code of an ISO 3166-1 alpha-2 country, NULL when unknown. */
PG_FUNCTION_INFO_V1(ecrm_country_calling_code);
Datum
ecrm_country_calling_code(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *iso2 = text_to_cstring(t);
	const char *cc = (strlen(iso2) == 2) ? EcrmCountryCallingCode(iso2) : NULL;

	if (cc == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(cc));
}

/*
 * Blocking key of an email address: the letters of its local part, without
 * digits, punctuation or a +tag ("John.Smith84+shop@x.com" -> "johnsmith"),
 * so that addresses one person made at different times meet.  NULL for a
 * text that is not an email address or a key shorter than 3 letters (such
 * keys would put unrelated people together).
 */
PG_FUNCTION_INFO_V1(ecrm_email_key);
Datum
ecrm_email_key(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *e;
	char	   *w;
	int			n = 0;

	EcrmCheckFieldLength(t, "email");
	e = EcrmNormalizeEmail(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (e == NULL)
		PG_RETURN_NULL();
	w = e;
	for (char *r = e; *r && *r != '@' && *r != '+'; r++)
	{
		unsigned char c = (unsigned char) *r;

		if ((c >= 'a' && c <= 'z') || c >= 0x80)
		{
			*w++ = c;
			n++;
		}
	}
	*w = '\0';
	if (n < 3)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(e));
}
