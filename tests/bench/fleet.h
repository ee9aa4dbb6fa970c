/*
 * The fake worker the in-process benchmarks (walks.c, replay.c) time the
 * registry in: worker 0 of FLEET_WORKERS, holding what one worker of a
 * node with FLEET_KEYS clients holds (its own share as local
 * connections, the siblings' as remote entries) and one watcher (the
 * mesh link of another node).
 */
#ifndef DERPD_TESTS_BENCH_FLEET_H
#define DERPD_TESTS_BENCH_FLEET_H

#include <stdint.h>

#include "common/bus.h"
#include "worker/wk.h"

#define FLEET_KEYS	100000
#define FLEET_WORKERS	8

double		 fleet_now_ms(void);
void		 fleet_key(uint8_t key[DERP_KEY_LEN], uint32_t i, uint8_t tag);
void		 fleet_client(struct bus_client *bc, uint32_t i, uint8_t tag);
struct worker	*fleet_new(void);
void		 fleet_free(struct worker *w);

#endif
