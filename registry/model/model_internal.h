/* The app model: what its files share beyond the public app_model.h. */
#ifndef TINE_MODEL_INTERNAL_H
#define TINE_MODEL_INTERNAL_H

#include "app_model.h"

/* Builds the index of m's function names (m->_fn_slots), once, after its
 * functions are read: reg_manifest_parse calls it. Returns 0, or -ENOMEM
 * (then the manifest has no index). */
int reg__manifest_index_functions(reg_manifest_t *m);

#endif
