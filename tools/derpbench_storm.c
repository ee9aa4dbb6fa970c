/*
 * derpbench --storm: a reconnect storm.  C threads each connect, finish
 * the TLS and DERP handshakes (ServerKey, ClientInfo, ServerInfo) and
 * disconnect, over and over, until N handshakes are done; the report is
 * the handshake rate, its latency and the server's CPU time per
 * handshake, whose inverse is what one server core sustains.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tools/derpbench.h"

#define STORM_MAX_THREADS	1024

struct storm_thread {
	const struct storm_opts	*o;
	atomic_int		*next;	/* handshakes handed out */
	uint32_t		*lat_us;	/* o->n slots, shared */
	int			 ok, failed, first_err;
	pthread_t		 t;
};

static uint64_t
mono_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
storm_thread(void *arg)
{
	struct storm_thread	*t = arg;
	const struct storm_opts	*o = t->o;
	struct client_opts	 co = o->co;
	struct client		*c;
	char			 src[INET_ADDRSTRLEN];
	struct in_addr		 a;
	uint32_t		 span = o->src_last - o->src_first + 1;
	uint64_t		 t0, d;
	int			 i, err = 0;

	while ((i = atomic_fetch_add(t->next, 1)) < o->n) {
		if (o->src_first != 0) {
			a.s_addr = htonl(o->src_first + (uint32_t)i % span);
			inet_ntop(AF_INET, &a, src, sizeof(src));
			co.bind_addr = src;
		}
		t0 = mono_ns();
		if ((c = client_connect(&co, &err)) == NULL) {
			if (t->failed++ == 0)
				t->first_err = err;
			t->lat_us[i] = UINT32_MAX;
			continue;
		}
		client_free(c);
		d = (mono_ns() - t0) / 1000;
		t->lat_us[i] = d >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)d;
		t->ok++;
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
self_cpu_s(void)
{
	struct rusage	ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return -1;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Latency quantile q of the n successful handshakes (sorted first). */
static double
quantile_ms(const uint32_t *v, int n, double q)
{
	int	i;

	if (n == 0)
		return -1;
	i = (int)(q * (n - 1) + 0.5);
	return v[i] / 1e3;
}

static void
storm_report(const struct storm_opts *o, int ok, int failed, int first_err,
    double secs, double srv_cpu, double cli_cpu, const uint32_t *lat)
{
	double	rate = secs > 0 ? ok / secs : 0;
	double	cpu_ms = srv_cpu >= 0 && ok > 0 ? srv_cpu * 1e3 / ok : -1;
	double	per_core = cpu_ms > 0 ? 1e3 / cpu_ms : -1;
	double	cli_ms = cli_cpu >= 0 && ok > 0 ? cli_cpu * 1e3 / ok : -1;

	if (o->json) {
		printf("{\"mode\":\"storm\",\"handshakes\":%d,"
		    "\"concurrency\":%d,\"tls\":%s,\"ok\":%d,\"failed\":%d,"
		    "\"first_error\":\"%s\",\"seconds\":%.3f,"
		    "\"handshakes_per_s\":%.1f,\"latency_ms_p50\":%.3f,"
		    "\"latency_ms_p99\":%.3f,\"latency_ms_max\":%.3f,",
		    o->n, o->concurrency, o->co.tls ? "true" : "false", ok,
		    failed, failed ? strerror(-first_err) : "", secs, rate,
		    quantile_ms(lat, ok, 0.5), quantile_ms(lat, ok, 0.99),
		    quantile_ms(lat, ok, 1.0));
		if (cpu_ms >= 0)
			printf("\"server_cpu_ms_per_handshake\":%.4f,"
			    "\"handshakes_per_server_core_s\":%.1f,", cpu_ms,
			    per_core);
		else
			printf("\"server_cpu_ms_per_handshake\":null,"
			    "\"handshakes_per_server_core_s\":null,");
		printf("\"client_cpu_ms_per_handshake\":%.4f}\n", cli_ms);
		return;
	}
	printf("storm %d handshakes over %s, %d at a time\n", o->n,
	    o->co.tls ? "TLS" : "plain HTTP", o->concurrency);
	printf("  %d done in %.2f s = %.1f handshakes/s", ok, secs, rate);
	if (failed)
		printf("; failed %d (first: %s)", failed,
		    strerror(-first_err));
	printf("\n  latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	    quantile_ms(lat, ok, 0.5), quantile_ms(lat, ok, 0.99),
	    quantile_ms(lat, ok, 1.0));
	if (cpu_ms >= 0)
		printf("  server CPU %.3f ms per handshake = %.0f handshakes/s "
		    "per server core\n", cpu_ms, per_core);
	printf("  client CPU %.3f ms per handshake (same machine)\n", cli_ms);
}

int
storm_run(const struct storm_opts *o)
{
	struct storm_thread	*ts;
	uint32_t		*lat;
	atomic_int		 next = 0;
	double			 cpu0, cpu1 = -1, cli0, cli1;
	uint64_t		 t0;
	int			 i, j, ok = 0, failed = 0, first_err = 0,
				 nt = o->concurrency;

	if (nt > STORM_MAX_THREADS)
		nt = STORM_MAX_THREADS;
	if (nt > o->n)
		nt = o->n;
	ts = calloc((size_t)nt, sizeof(*ts));
	lat = calloc((size_t)o->n, sizeof(*lat));
	if (ts == NULL || lat == NULL) {
		fprintf(stderr, "derpbench: out of memory\n");
		free(ts);
		free(lat);
		return 1;
	}
	cpu0 = procs_cpu_seconds(o->pids, o->npids);
	cli0 = self_cpu_s();
	t0 = mono_ns();
	for (i = 0; i < nt; i++) {
		ts[i].o = o;
		ts[i].next = &next;
		ts[i].lat_us = lat;
		if (pthread_create(&ts[i].t, NULL, storm_thread, &ts[i]) != 0) {
			fprintf(stderr, "derpbench: pthread_create failed\n");
			atomic_store(&next, o->n);
			nt = i;
			break;
		}
	}
	for (i = 0; i < nt; i++) {
		pthread_join(ts[i].t, NULL);
		ok += ts[i].ok;
		failed += ts[i].failed;
		if (first_err == 0)
			first_err = ts[i].first_err;
	}
	if (cpu0 >= 0 && (cpu1 = procs_cpu_seconds(o->pids, o->npids)) >= 0)
		cpu1 -= cpu0;
	cli1 = self_cpu_s();
	/* The successful handshakes' latencies, sorted. */
	for (i = 0, j = 0; i < o->n; i++)
		if (lat[i] != UINT32_MAX && i < atomic_load(&next))
			lat[j++] = lat[i];
	qsort(lat, (size_t)j, sizeof(*lat), cmp_u32);
	storm_report(o, ok, failed, first_err, (double)(mono_ns() - t0) / 1e9,
	    cpu1, cli0 >= 0 && cli1 >= 0 ? cli1 - cli0 : -1, lat);
	free(ts);
	free(lat);
	return ok == o->n ? 0 : 1;
}
