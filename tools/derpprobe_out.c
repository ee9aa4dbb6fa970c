/*
 * derpprobe output: the human table, the JSON report (jansson), the
 * Prometheus text exposition and the HTML status page of the daemon.
 * Label and HTML values come from the (untrusted) DERP map: escaped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tools/derpprobe.h"

#define SB_MAX	(16 * 1024 * 1024)

struct sbuf {
	char	*p;
	size_t	 len, cap;
	bool	 err;
};

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;
	char	*np;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap -
		    b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = true;
			return;
		}
		if (b->p != NULL && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		if (b->len + (size_t)n + 1 > SB_MAX) {
			b->err = true;
			return;
		}
		b->cap = b->cap ? b->cap * 2 : 4096;
		while (b->cap < b->len + (size_t)n + 1)
			b->cap *= 2;
		if ((np = realloc(b->p, b->cap)) == NULL) {
			b->err = true;
			return;
		}
		b->p = np;
	}
}

static char *
sb_take(struct sbuf *b)
{
	if (b->err || b->p == NULL) {
		free(b->p);
		errno = ENOMEM;
		return NULL;
	}
	return b->p;
}

/* Prometheus label value escaping: \\, \" and \n. */
static void
sb_label(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sb_printf(b, "\\%c", *s);
		else if (*s == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *s);
	}
}

static void
sb_html(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': sb_printf(b, "&lt;"); break;
		case '>': sb_printf(b, "&gt;"); break;
		case '&': sb_printf(b, "&amp;"); break;
		case '"': sb_printf(b, "&quot;"); break;
		case '\'': sb_printf(b, "&#39;"); break;
		default: sb_printf(b, "%c", *s); break;
		}
	}
}

void
out_table(const struct probe_report *rep, FILE *f)
{
	const struct probe_result	*p;
	enum probe_verdict		 v = probe_report_verdict(rep);
	size_t				 i, w = 5;
	char				 lat[32];

	for (i = 0; i < rep->n; i++)
		if (strlen(rep->res[i].name) > w)
			w = strlen(rep->res[i].name);
	fprintf(f, "%-*s  %-8s  %10s  %s\n", (int)w, "PROBE", "RESULT",
	    "LATENCY", "DETAIL");
	for (i = 0; i < rep->n; i++) {
		p = &rep->res[i];
		if (p->latency_ms >= 0)
			snprintf(lat, sizeof(lat), "%.2fms", p->latency_ms);
		else
			snprintf(lat, sizeof(lat), "-");
		fprintf(f, "%-*s  %-8s  %10s  %s\n", (int)w, p->name,
		    probe_verdict_name(p->verdict), lat, p->detail);
	}
	fprintf(f, "\n%s: %zu probes in %.0f ms", probe_verdict_name(v),
	    rep->n, rep->duration_ms);
	for (i = 0; i < rep->n; i++)
		if (rep->res[i].verdict == PROBE_FAIL)
			fprintf(f, "%s %s", i ? "," : "; failed:",
			    rep->res[i].name);
	fprintf(f, "\n");
}

static json_t *
result_json(const struct probe_result *p)
{
	json_t	*o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "class", json_string(probe_class_name(
	    p->cls)));
	json_object_set_new(o, "region_id", json_integer(p->region_id));
	json_object_set_new(o, "region", json_string(p->region));
	json_object_set_new(o, "node", json_string(p->from));
	if (p->to[0])
		json_object_set_new(o, "to", json_string(p->to));
	json_object_set_new(o, "hostname", json_string(p->host));
	if (p->family)
		json_object_set_new(o, "family", json_integer(p->family));
	json_object_set_new(o, "result", json_string(probe_verdict_name(
	    p->verdict)));
	if (p->latency_ms >= 0)
		json_object_set_new(o, "latency_ms", json_real(p->latency_ms));
	if (p->cls == PROBE_TLS && p->cert_days >= 0)
		json_object_set_new(o, "cert_days_left", json_real(
		    p->cert_days));
	if (p->cls == PROBE_BW && p->bytes_per_sec > 0)
		json_object_set_new(o, "bytes_per_sec", json_real(
		    p->bytes_per_sec));
	json_object_set_new(o, "detail", json_string(p->detail));
	return o;
}

char *
out_json(const struct probe_report *rep)
{
	enum probe_verdict	 v = probe_report_verdict(rep);
	json_t			*root = json_object(), *arr = json_array();
	json_t			*failed = json_array(), *one;
	char			*s = NULL;
	size_t			 i;

	if (root == NULL || arr == NULL || failed == NULL)
		goto out;
	json_object_set_new(root, "status", json_string(
	    probe_verdict_name(v)));
	json_object_set_new(root, "exit", json_integer((int)v));
	json_object_set_new(root, "started", json_real(rep->started_unix));
	json_object_set_new(root, "duration_ms", json_real(rep->duration_ms));
	for (i = 0; i < rep->n; i++) {
		if ((one = result_json(&rep->res[i])) == NULL)
			goto out;
		json_array_append_new(arr, one);
		if (rep->res[i].verdict == PROBE_FAIL)
			json_array_append_new(failed, json_string(
			    rep->res[i].name));
	}
	json_object_set(root, "probes", arr);
	json_object_set(root, "failed", failed);
	s = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
out:
	json_decref(arr);
	json_decref(failed);
	json_decref(root);
	return s;
}

static void
labels(struct sbuf *b, const struct probe_result *p)
{
	sb_printf(b, "{name=\"");
	sb_label(b, p->name);
	sb_printf(b, "\",class=\"%s\",region=\"", probe_class_name(p->cls));
	sb_label(b, p->region);
	sb_printf(b, "\",region_id=\"%" PRId64 "\",hostname=\"", p->region_id);
	sb_label(b, p->host);
	sb_printf(b, "\",node=\"");
	sb_label(b, p->from);
	sb_printf(b, "\"");
	if (p->cls == PROBE_MESH || p->cls == PROBE_BW) {
		sb_printf(b, ",to=\"");
		sb_label(b, p->to);
		sb_printf(b, "\",derp_path=\"%s\"", strcmp(p->from, p->to) ?
		    "mesh" : "single");
	}
	if (p->family)
		sb_printf(b, ",address_family=\"ipv%d\"", p->family);
	sb_printf(b, "}");
}

enum gauge { G_RESULT, G_VERDICT, G_LATENCY, G_END, G_CERT, G_BW };

static void
family_block(struct sbuf *b, const struct probe_report *rep, enum gauge g)
{
	static const char *const meta[][2] = {
		{ "result", "1 if the probe passed (ok or warning), else 0" },
		{ "verdict", "0 ok, 1 warning, 2 critical" },
		{ "latency_millis", "probe latency of the last run" },
		{ "end_secs", "unix time the last run of the probe ended" },
		{ "cert_expiry_seconds", "seconds until the leaf certificate "
		    "expires" },
		{ "bandwidth_bytes_per_second", "bandwidth probe throughput" },
	};
	const struct probe_result	*p;
	size_t				 i;

	sb_printf(b, "# HELP derpprobe_%s %s\n# TYPE derpprobe_%s gauge\n",
	    meta[g][0], meta[g][1], meta[g][0]);
	for (i = 0; i < rep->n; i++) {
		p = &rep->res[i];
		if ((g == G_LATENCY && p->latency_ms < 0) ||
		    (g == G_CERT && (p->cls != PROBE_TLS || p->cert_days < 0))
		    || (g == G_BW && p->cls != PROBE_BW))
			continue;
		sb_printf(b, "derpprobe_%s", meta[g][0]);
		labels(b, p);
		switch (g) {
		case G_RESULT: sb_printf(b, " %d\n", p->verdict != PROBE_FAIL);
			break;
		case G_VERDICT: sb_printf(b, " %d\n", (int)p->verdict); break;
		case G_LATENCY: sb_printf(b, " %.3f\n", p->latency_ms); break;
		case G_END: sb_printf(b, " %.3f\n", p->end_unix); break;
		case G_CERT: sb_printf(b, " %.0f\n", p->cert_days * 86400);
			break;
		case G_BW: sb_printf(b, " %.0f\n", p->bytes_per_sec); break;
		}
	}
}

char *
out_metrics(const struct probe_report *rep, double interval_s,
    uint64_t rounds, uint64_t map_failures)
{
	struct sbuf	b = { 0 };
	int		g;

	for (g = G_RESULT; g <= G_BW; g++)
		family_block(&b, rep, (enum gauge)g);
	sb_printf(&b, "# HELP derpprobe_interval_secs probe round interval\n"
	    "# TYPE derpprobe_interval_secs gauge\n"
	    "derpprobe_interval_secs %.0f\n", interval_s);
	sb_printf(&b, "# HELP derpprobe_round_duration_millis duration of "
	    "the last round\n# TYPE derpprobe_round_duration_millis gauge\n"
	    "derpprobe_round_duration_millis %.3f\n", rep->duration_ms);
	sb_printf(&b, "# HELP derpprobe_rounds_total completed rounds\n"
	    "# TYPE derpprobe_rounds_total counter\n"
	    "derpprobe_rounds_total %" PRIu64 "\n", rounds);
	sb_printf(&b, "# HELP derpprobe_map_failures_total DERP map loads "
	    "that failed (the previous map was kept)\n"
	    "# TYPE derpprobe_map_failures_total counter\n"
	    "derpprobe_map_failures_total %" PRIu64 "\n", map_failures);
	return sb_take(&b);
}

char *
out_html(const struct probe_report *rep)
{
	const struct probe_result	*p;
	struct sbuf			 b = { 0 };
	enum probe_verdict		 v = probe_report_verdict(rep);
	size_t				 i;

	sb_printf(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<meta http-equiv=\"refresh\" content=\"15\">"
	    "<title>derpprobe</title><style>td,th{padding:2px 8px;"
	    "text-align:left}.ok{color:green}.warning{color:#b80}"
	    ".critical{color:red}</style></head><body>\n<h1>derpprobe: "
	    "<span class=\"%s\">%s</span></h1>\n", probe_verdict_name(v),
	    rep->n ? probe_verdict_name(v) : "no round yet");
	sb_printf(&b, "<p>%zu probes, last round %.0f ms. "
	    "<a href=\"/metrics\">metrics</a></p>\n<table>\n<tr><th>probe"
	    "</th><th>result</th><th>latency</th><th>detail</th></tr>\n",
	    rep->n, rep->duration_ms);
	for (i = 0; i < rep->n; i++) {
		p = &rep->res[i];
		sb_printf(&b, "<tr><td>");
		sb_html(&b, p->name);
		sb_printf(&b, "</td><td class=\"%s\">%s</td><td>",
		    probe_verdict_name(p->verdict),
		    probe_verdict_name(p->verdict));
		if (p->latency_ms >= 0)
			sb_printf(&b, "%.2f ms", p->latency_ms);
		sb_printf(&b, "</td><td>");
		sb_html(&b, p->detail);
		sb_printf(&b, "</td></tr>\n");
	}
	sb_printf(&b, "</table>\n</body></html>\n");
	return sb_take(&b);
}
