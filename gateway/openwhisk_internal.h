/* What the parts of the OpenWhisk-compatible API share (docs/openwhisk.md):
 * openwhisk.c the request (its caller, namespace, app and state), errors
 * and routing; openwhisk_deploy.c an entity change built into the next
 * bundle and deployed; openwhisk_entities.c actions, triggers, rules and
 * packages; openwhisk_invoke.c invocations, sequences, web actions and
 * activations. Internal to the gateway; cross-file names gw__ow_. */
#ifndef TINE_GATEWAY_OPENWHISK_INTERNAL_H
#define TINE_GATEWAY_OPENWHISK_INTERNAL_H

#include "openwhisk.h"

#include "auth.h"
#include "gateway_internal.h"
#include "registry.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define OW_BLOCKING_MS 60000u  /* a blocking invoke waits this long at most, then answers 202 */
#define OW_RING 4096u          /* results of recent calls kept by this node */
#define OW_APP_PREFIX "ow-"
#define OW_STATE_FILE "openwhisk.json"
#define OW_DEFAULT_TIMEOUT 60000
#define OW_DEFAULT_MEMORY 256
#define OW_MAX_SEQUENCE 50

/* One request to /api/v1/namespaces/NS/...: who calls, the namespace's
 * app and its live state. */
typedef struct {
    gw_server_t *gw;
    h2o_req_t *req;
    gw_caller_t caller;
    char ns[64];
    char app[80];
    reg_app_version_t *v; /* the live version (a reference), NULL when the namespace has none */
    json_t *state;        /* its openwhisk.json, or an empty state */
    char audit[48];       /* a change's audit action ("openwhisk.actions.put"), "" for a read */
    char target[600];     /* the entity it changes */
} ow_req_t;

/* ------------ openwhisk.c: errors and the request */

/* Writes the audit entry of a change (tn_audit_append: in the background),
 * as the admin API writes one for each of its changes. */
void gw__ow_audit(const ow_req_t *r, int status, const char *detail);

/* Lets go of what the request holds (its version and state). */
void gw__ow_req_dispose(ow_req_t *r);

/* The state of version v (a new reference), or NULL with the reason in
 * jerr. Nobody changes a state in place: changes are made on copies. */
json_t *gw__ow_state_of(const reg_app_version_t *v, json_error_t *jerr);

/* Reads the live version of the namespace's app and its state. False (503
 * sent) when the state file of a live version cannot be read. */
bool gw__ow_load_state(ow_req_t *r);

/* The request body as a JSON object (an empty one when there is none);
 * NULL with 400 sent when it is not one. */
json_t *gw__ow_body_object(h2o_req_t *req);

/* A query flag: "true" (or present without a value) counts. */
bool gw__ow_query_true(h2o_req_t *req, const char *name);

/* Sends OpenWhisk's error shape {"error": message, "code": id} (the code is
 * a transaction id, as OpenWhisk's, also in the node's log). */
void gw__ow_error(h2o_req_t *req, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ------------ openwhisk_deploy.c: files, kinds and deploys */

/* What a change writes into the new bundle besides the state: called with
 * the bundle's directory; returns 0 or a 400's message in err. */
typedef int (*ow_write_cb)(void *data, const char *dir, char *err, size_t errlen);

/* Whether main (the exported function's name) is a safe identifier for the
 * wrappers. */
bool gw__ow_main_valid(const char *m);

/* Writes an action's files into dir (ow/<fn> of the new bundle): its code
 * as given (exec.code, for GET), the code where its runtime loads it, and
 * its wrapper. Returns 0, or 400's message in err. */
int gw__ow_write_action(const char *dir, gw_ow_kind_t k, const char *fn, const char *main, const char *code,
                        bool binary, size_t max, char *err, size_t errlen);

/* Deploys state as the namespace's next version (not taken; drop: the
 * functions' directories to leave out; write: what the change adds),
 * answering its failure in OpenWhisk's shape. True when it deployed. */
bool gw__ow_deploy(ow_req_t *r, const json_t *state, const char *const *drop, size_t ndrop, ow_write_cb write,
                   void *data);

/* Deploys state (taken) dropping the functions' directories in drop, and
 * answers 200 with shown (taken) once it is live (deploy answered a
 * failure). */
void gw__ow_deploy_answer(ow_req_t *r, json_t *state, const char *const *drop, size_t ndrop, json_t *shown);

/* ------------ openwhisk_entities.c: entities */

/* The action `name` of the state, or NULL. */
json_t *gw__ow_action_of(const json_t *state, const char *name);

/* An action as OpenWhisk shows it; with its code when `code`. */
json_t *gw__ow_action_json(const ow_req_t *r, const char *name, const json_t *a, bool code);

/* The name in the path: one segment, or package/action. False (400 sent)
 * when a segment is not an OpenWhisk name. */
bool gw__ow_entity_name(h2o_req_t *req, char **seg, size_t n, char *out, size_t outlen);

/* An action name given in a sequence's components: "/ns/name",
 * "/ns/pkg/name", "name" or "pkg/name" in this namespace. NULL when it is
 * another namespace's. */
const char *gw__ow_component_name(const ow_req_t *r, const char *c);

/* PUT /namespaces/NS/actions/NAME[?overwrite=true] */
void gw__ow_action_put(ow_req_t *r, const char *name);

/* GET list of a kind of entity, with limit and skip. */
void gw__ow_list_entities(ow_req_t *r, const char *what, json_t *(*show)(const ow_req_t *, const char *,
                                                                           const json_t *, bool));

/* DELETE /namespaces/NS/actions/NAME: the next version without the action
 * (and its function's directory). */
void gw__ow_action_delete(ow_req_t *r, const char *name);

/* A trigger, rule or package as OpenWhisk shows it. */
json_t *gw__ow_entity_json(const ow_req_t *r, const char *name, const json_t *e, bool full);

/* gw__ow_action_json in the shape gw__ow_list_entities takes. */
json_t *gw__ow_action_listed(const ow_req_t *r, const char *name, const json_t *a, bool code);

/* The rules entry shown by OpenWhisk: trigger and action as {"name","path"}. */
json_t *gw__ow_rule_json(const ow_req_t *r, const char *name, const json_t *e, bool full);

/* PUT of a trigger, rule or package; `what` says which. */
void gw__ow_entity_put(ow_req_t *r, const char *what, const char *name);

/* DELETE of a trigger, rule or package; refused (409) while it would leave
 * something dangling: rules of a trigger, actions of a package. */
void gw__ow_entity_delete(ow_req_t *r, const char *what, const char *name);

/* POST /namespaces/NS/rules/NAME {"status": "active"|"inactive"} */
void gw__ow_rule_status(ow_req_t *r, const char *name);

/* ------------ openwhisk_invoke.c: invocations, activations, web actions */

/* POST /namespaces/NS/actions/NAME[?blocking=true][&result=true] */
void gw__ow_action_invoke(ow_req_t *r, const char *name);

/* Finds an activation: billing's record (with its logs), completed with the
 * kept result; or only the kept one while its record is still on its way
 * (billing writes in batches). NULL with 404/503 sent. */
json_t *gw__ow_find_activation(ow_req_t *r, const char *id);

/* GET /namespaces/NS/activations[?name][&limit][&skip][&since][&upto][&docs] */
void gw__ow_activations_list(ow_req_t *r);

/* POST /namespaces/NS/triggers/NAME: fires its active rules' actions (not
 * blocking); answers the trigger's activation id (202), or 204 when no
 * rule of it is active, as OpenWhisk. */
void gw__ow_trigger_fire(ow_req_t *r, const char *name);

/* GET|POST|... /api/v1/web/NS/PKG/ACTION[.ext][/rest]: the action annotated
 * web-export, called with the request as __ow_* parameters. Public, as in
 * OpenWhisk: the namespace's app is found without a key. */
void gw__ow_web(gw_server_t *gw, h2o_req_t *req, char **seg, size_t n);

#endif
