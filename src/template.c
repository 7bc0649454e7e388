/*
 * template.c — message templates of the automation layer.
 *
 * A template is plain text with placeholders "{{ name }}" or
 * "{{ name | fallback text }}".  Names are lower-case identifiers.  The same
 * parser lists the placeholders of a template (so a rule is validated when it
 * is saved) and renders it with a jsonb object of field values (when a rule
 * fires), so what validation accepts is exactly what rendering understands.
 */
#include "postgres.h"

#include "ecrm.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* Longest placeholder name, and longest rendered text. */
#define TEMPLATE_MAX_NAME		63
#define TEMPLATE_MAX_OUTPUT		(10 * 1024 * 1024)

typedef struct TemplatePart
{
	const char *name;			/* placeholder name, NUL-terminated copy */
	int			name_len;
	const char *fallback;		/* text after "|", trimmed; NULL when none */
	int			fallback_len;
	int			start;			/* byte offset of "{{" */
	int			end;			/* byte offset just past "}}" */
} TemplatePart;

static bool
IsNameStart(char c)
{
	return (c >= 'a' && c <= 'z') || c == '_';
}

static bool
IsNameChar(char c)
{
	return IsNameStart(c) || (c >= '0' && c <= '9');
}

/*
 * Parse the placeholder starting at s[pos] ("{{").  Fills *part; raises an
 * error naming the position (in characters) of a malformed placeholder.
 */
static void
ParsePlaceholder(const char *s, int len, int pos, TemplatePart *part)
{
	int			i = pos + 2;
	int			name_start;
	int			close;

	/* find the closing braces first: the error for a missing one is clearest */
	for (close = i; close + 1 < len; close++)
	{
		if (s[close] == '}' && s[close + 1] == '}')
			break;
		if (s[close] == '{' && s[close + 1] == '{')
			close = len;		/* a new "{{" before "}}" */
	}
	if (close + 1 >= len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("unterminated placeholder at character %d of the template",
						pg_mbstrlen_with_len(s, pos) + 1),
				 errhint("Write placeholders as {{ name }} or {{ name | fallback }}.")));

	while (i < close && (s[i] == ' ' || s[i] == '\t'))
		i++;
	name_start = i;
	if (i >= close || !IsNameStart(s[i]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid placeholder at character %d of the template: \"%.*s\"",
						pg_mbstrlen_with_len(s, pos) + 1,
						Min(close + 2 - pos, 80), s + pos),
				 errhint("A placeholder name is lower-case letters, digits and \"_\", starting with a letter.")));
	while (i < close && IsNameChar(s[i]))
		i++;
	if (i - name_start > TEMPLATE_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("placeholder name at character %d of the template is longer than %d characters",
						pg_mbstrlen_with_len(s, pos) + 1, TEMPLATE_MAX_NAME)));
	part->name = s + name_start;
	part->name_len = i - name_start;
	while (i < close && (s[i] == ' ' || s[i] == '\t'))
		i++;
	part->fallback = NULL;
	part->fallback_len = 0;
	if (i < close && s[i] == '|')
	{
		int			f_end = close;

		i++;
		while (i < close && (s[i] == ' ' || s[i] == '\t'))
			i++;
		while (f_end > i && (s[f_end - 1] == ' ' || s[f_end - 1] == '\t'))
			f_end--;
		part->fallback = s + i;
		part->fallback_len = f_end - i;
	}
	else if (i < close)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid placeholder at character %d of the template: \"%.*s\"",
						pg_mbstrlen_with_len(s, pos) + 1,
						Min(close + 2 - pos, 80), s + pos),
				 errhint("Write placeholders as {{ name }} or {{ name | fallback }}.")));
	part->start = pos;
	part->end = close + 2;
}

/* Append the text form of a jsonb value: strings bare, arrays joined with ", ". */
static void
AppendJsonbValue(StringInfo out, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			break;
		case jbvString:
			appendBinaryStringInfo(out, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(out,
								   DatumGetCString(DirectFunctionCall1(numeric_out,
																	   NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		case jbvBinary:
			{
				JsonbIterator *it = JsonbIteratorInit((JsonbContainer *) v->val.binary.data);
				JsonbValue	elem;
				JsonbIteratorToken tok;
				bool		first = true;

				if (!JsonContainerIsArray((JsonbContainer *) v->val.binary.data))
				{
					(void) JsonbToCString(out, (JsonbContainer *) v->val.binary.data,
										  v->val.binary.len);
					break;
				}
				while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
				{
					if (tok != WJB_ELEM || elem.type == jbvNull)
						continue;
					if (!first)
						appendStringInfoString(out, ", ");
					first = false;
					AppendJsonbValue(out, &elem);
				}
				break;
			}
		default:
			break;
	}
}

/* Is a value empty (absent, null, "" or [])? Then the fallback is used. */
static bool
JsonbValueIsEmpty(JsonbValue *v)
{
	if (v == NULL || v->type == jbvNull)
		return true;
	if (v->type == jbvString)
		return v->val.string.len == 0;
	if (v->type == jbvBinary && JsonContainerIsArray((JsonbContainer *) v->val.binary.data))
		return JsonContainerSize((JsonbContainer *) v->val.binary.data) == 0;
	return false;
}

/* placeholder names of a template, in order of first use, without repeats */
PG_FUNCTION_INFO_V1(ecrm_template_fields);
Datum
ecrm_template_fields(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	ArrayBuildState *astate = NULL;
	List	   *seen = NIL;
	int			pos;

	EcrmCheckFieldLength(t, "template");
	for (pos = 0; pos + 1 < len; pos++)
	{
		TemplatePart part;
		ListCell   *lc;
		bool		dup = false;
		char	   *name;

		if (s[pos] != '{' || s[pos + 1] != '{')
			continue;
		CHECK_FOR_INTERRUPTS();
		ParsePlaceholder(s, len, pos, &part);
		name = pnstrdup(part.name, part.name_len);
		foreach(lc, seen)
		{
			if (strcmp((char *) lfirst(lc), name) == 0)
			{
				dup = true;
				break;
			}
		}
		if (!dup)
		{
			seen = lappend(seen, name);
			astate = accumArrayResult(astate, CStringGetTextDatum(name), false,
									  TEXTOID, CurrentMemoryContext);
		}
		pos = part.end - 1;
	}
	if (astate == NULL)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(TEXTOID));
	PG_RETURN_DATUM(makeArrayResult(astate, CurrentMemoryContext));
}

/* a template rendered with the values of a jsonb object */
PG_FUNCTION_INFO_V1(ecrm_render_template);
Datum
ecrm_render_template(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	Jsonb	   *fields = PG_GETARG_JSONB_P(1);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	StringInfoData out;
	int			pos;
	int			copied = 0;

	EcrmCheckFieldLength(t, "template");
	if (!JB_ROOT_IS_OBJECT(fields))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("template fields must be a JSON object")));
	initStringInfo(&out);
	for (pos = 0; pos + 1 < len; pos++)
	{
		TemplatePart part;
		JsonbValue *v;

		if (s[pos] != '{' || s[pos + 1] != '{')
			continue;
		CHECK_FOR_INTERRUPTS();
		ParsePlaceholder(s, len, pos, &part);
		appendBinaryStringInfo(&out, s + copied, pos - copied);
		v = getKeyJsonValueFromContainer(&fields->root, part.name, part.name_len, NULL);
		if (JsonbValueIsEmpty(v))
		{
			if (part.fallback)
				appendBinaryStringInfo(&out, part.fallback, part.fallback_len);
		}
		else
			AppendJsonbValue(&out, v);
		if (out.len > TEMPLATE_MAX_OUTPUT)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("rendered template is longer than %d bytes", TEMPLATE_MAX_OUTPUT)));
		pos = part.end - 1;
		copied = part.end;
	}
	appendBinaryStringInfo(&out, s + copied, len - copied);
	if (out.len > TEMPLATE_MAX_OUTPUT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rendered template is longer than %d bytes", TEMPLATE_MAX_OUTPUT)));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
