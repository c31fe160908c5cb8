/*
 * The step registry (steps.c): every step type mmigrate knows, one line each.
 * The engine never names a step type; the command line hands this table to
 * plan_load.
 */
#ifndef MM_STEPS_H
#define MM_STEPS_H

#include "step.h"

/* NULL-terminated; static, never freed. */
const struct step_type *const *step_types_all(void);

#endif
