/* Quotas per namespace, enforced cluster-wide without Redis on the request
 * path (docs/tenancy.md, "Quotas", has the design and its bounds).
 *
 * Five quotas: calls at once (concurrency: accepted and not finished),
 * sandboxes, their memory (the functions' `memory`), calls per minute (UTC
 * minutes of Redis's clock) and spend per day (UTC days, priced as billing
 * prices: tined hands every activation's cost to tn_quotas_spent).
 *
 * Each node holds, per namespace, a reservation of each count quota (calls,
 * sandboxes, memory) and a number of tokens of the current minute, granted
 * by one script (sync_lua) that sees every node's entry in
 * tine:quota:{ns}:nodes: it grants a node at most what the limit leaves after
 * the other nodes' reservations, so the reservations of live nodes never add
 * up to more than the limit, and tokens are taken from one counter per
 * minute. A call or a sandbox within this node's reservation (and tokens)
 * is admitted at once; past it, it waits for one script (the node asks for
 * what its waiting calls need, plus a share of what is left) and is then
 * admitted or refused. Every TN_QUOTA_SYNC_MS each active namespace reports
 * its use and trims its reservation to its recent peak plus a share; the
 * same script adds the node's spend to the day's counter and returns the
 * total. While Redis is away each node enforces the limits on its own calls
 * alone.
 *
 * The invoker asks through the hooks of common/admission.h
 * (tn_quotas_admission); a hook never calls back inside itself: answers to
 * waiting admissions go out from a Redis reply or the loop's check phase. */
#include "tenancy_internal.h"

#include "admission.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TN_QUOTA_SYNC_MS 250   /* reports and trims of active namespaces */
#define TN_QUOTA_STALE_MS 3000 /* a node's entry older than this is gone (its node is) */
#define TN_QUOTA_FRESH_MS 250  /* a refusal from Redis stands this long before asking again */
#define TN_QUOTA_RETRIES 2     /* asks again, a sync period apart, while other nodes hold unused room */
#define TN_QUOTA_GEN_MS 1000   /* limits changed elsewhere are read within this */
#define TN_QUOTA_SYNC_TIMEOUT_MS 5000
#define TN_QUOTA_DOWN_WAIT_MS 500 /* a script waits this long for a connection that is down */
#define TN_QUOTA_REPLY_TIMEOUT_MS 1000 /* a script unanswered this long: redis is away */
#define PUSD_PER_NUSD 1000u       /* spend counters in Redis are in nanodollars (exact in Lua) */

enum { COUNT_CALLS, COUNT_SANDBOXES, COUNT_MEMORY, NCOUNTS }; /* = TN_QUOTA_CONCURRENCY .. MEMORY */

static const char *const quota_names[TN_NQUOTAS] = {"concurrency", "sandboxes", "memory_mb", "per_minute",
                                                    "spend_per_day"};
/* The Redis hash field of each limit. */
static const char *const limit_fields[TN_NQUOTAS] = {"concurrency", "sandboxes", "memory_mb", "per_minute",
                                                     "spend_pusd"};
static const uint64_t quota_max[TN_NQUOTAS] = {1000000, 1000000, UINT64_C(1) << 30, 1000000000,
                                               UINT64_C(1000000) * UINT64_C(1000000000000)};

/* A call or sandbox waiting for the answer of a script. */
typedef struct {
    tine_list_t link;
    inv_admit_kind_t kind;
    uint32_t mb;
    inv_admit_done_cb done;
    void *ticket;
    bool asked; /* the script in flight (or answered) asked for it */
    int tries;  /* answers that refused it while other nodes held unused room */
} waiter_t;

/* A namespace as this node sees it. */
typedef struct {
    tine_list_t link;     /* q->spaces */
    tine_list_t due_link; /* q->due while something is due at the end of this loop turn */
    tn_quotas_t *q;
    uint64_t limit[TN_NQUOTAS]; /* 0: none; spend in picodollars */
    bool limited;               /* any limit */
    /* this node */
    uint64_t use[NCOUNTS];            /* exact: calls accepted and not finished, sandboxes, their MB */
    uint64_t peak[NCOUNTS];           /* the highest use since the last script */
    uint64_t held[NCOUNTS];           /* the reservation Redis granted */
    uint64_t tokens;                  /* calls of the minute token_win this node may still admit */
    uint64_t token_win, token_end_ms; /* its minute (Redis's), when it ends (this node's clock) */
    uint64_t last_grant;              /* tokens of the last grant (refill early below half of it) */
    uint64_t calls_since;             /* calls admitted since the last script */
    uint64_t pm_out_until;            /* no token left in the minute until then */
    uint64_t denied_ms[NCOUNTS];
    uint64_t local_win, local_calls; /* calls of this node in this minute, for when Redis is away */
    /* spend */
    uint64_t spent_nusd;   /* the cluster's spend today as the last script saw it */
    uint64_t day_end_ms;   /* when that day ends (this node's clock) */
    uint64_t pending_pusd; /* this node's, not sent yet */
    uint64_t sent_nusd;    /* in the script in flight */
    /* the cluster */
    uint64_t others_use[NCOUNTS];
    uint64_t elsewhere[NCOUNTS + 1]; /* unused room other nodes hold: reservations past use, tokens */
    uint64_t minute_used;
    unsigned nodes;
    /* the script */
    bool syncing;                /* one in flight */
    bool sync_due;               /* one more is due (at the end of this loop turn) */
    bool resolve_due;            /* waiters may be answered (room freed here) */
    bool retry_due;              /* a script is due at the next tick (others give room back by then) */
    bool down;                   /* the last script failed: each limit is this node's alone */
    uint64_t asked[NCOUNTS + 1]; /* what the script in flight asked beyond use (tokens last) */
    tine_list_t waiters;
    char name[];
} space_t;

struct tn_quotas {
    uv_loop_t *loop;
    char *node_id;
    rds_sync_t *sync; /* admin reads and writes */
    rds_async_t *cmd; /* scripts, the generation check */
    uv_timer_t *tick; /* heap: closed apart from q */
    uv_check_t *check;
    tine_list_t spaces;
    tine_list_t due;
    long long gen;
    bool reloading;
    uint64_t ticks;
    bool closing;
    int handles_open;
    inv_admission_t hooks;
};

/* The loop's time (ms): read once per loop turn, no clock read per call. */
static uint64_t now_ms(const tn_quotas_t *q)
{
    return uv_now(q->loop);
}

const char *tn_quota_name(tn_quota_t k)
{
    return k < TN_NQUOTAS ? quota_names[k] : "?";
}

uint64_t tn_quota_max(tn_quota_t k)
{
    return k < TN_NQUOTAS ? quota_max[k] : 0;
}

/* "12.5" dollars of picodollars: at least two digits after the point,
 * trailing zeros past them dropped. */
static void fmt_usd(uint64_t pusd, char out[40])
{
    int n =
        snprintf(out, 40, "%" PRIu64 ".%012" PRIu64, pusd / UINT64_C(1000000000000), pusd % UINT64_C(1000000000000));
    while (n > 0 && out[n - 1] == '0' && out[n - 3] != '.')
        out[--n] = '\0';
}

/* "3 h 12 min", "40 s": a wait for messages. */
static void fmt_wait(uint64_t s, char out[32])
{
    if (s >= 3600)
        snprintf(out, 32, "%" PRIu64 " h %" PRIu64 " min", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, 32, "%" PRIu64 " min %" PRIu64 " s", s / 60, s % 60);
    else
        snprintf(out, 32, "%" PRIu64 " s", s);
}

/* ------------------------------------------------------------ the spaces */

static space_t *space_find(tn_quotas_t *q, const char *name)
{
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &q->spaces) {
        space_t *n = tine_list_entry(l, space_t, link);
        if (strcmp(n->name, name) == 0)
            return n;
    }
    return NULL;
}

/* The space of namespace `name`, made on first use; kept until tn_quotas_free. */
static space_t *space_get(tn_quotas_t *q, const char *name)
{
    space_t *n = space_find(q, name);
    if (n)
        return n;
    size_t len = strlen(name);
    n = xcalloc(1, sizeof(*n) + len + 1);
    memcpy(n->name, name, len + 1);
    n->q = q;
    tine_list_init(&n->waiters);
    tine_list_init(&n->due_link);
    tine_list_insert_tail(&q->spaces, &n->link);
    return n;
}

static void on_check(uv_check_t *h);

/* Something of n is due at the end of this loop turn (on_check). */
static void space_due(space_t *n)
{
    tn_quotas_t *q = n->q;
    if (q->closing)
        return;
    if (!tine_list_linked(&n->due_link))
        tine_list_insert_tail(&q->due, &n->due_link);
    uv_check_start(q->check, on_check);
}

/* Sets the limits from a hash's field/value pairs (a reply's array, or
 * none: no quota). A limit that changed drops what this node holds of it
 * past its use (reserved room, tokens): the next call past its use asks
 * Redis under the new limit. */
static void space_set_limits(space_t *n, const redisReply *pairs)
{
    uint64_t old[TN_NQUOTAS];
    memcpy(old, n->limit, sizeof(old));
    memset(n->limit, 0, sizeof(n->limit));
    n->limited = false;
    for (size_t i = 0; pairs && pairs->type == REDIS_REPLY_ARRAY && i + 1 < pairs->elements; i += 2) {
        const redisReply *f = pairs->element[i], *v = pairs->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        for (int k = 0; k < TN_NQUOTAS; k++)
            if (strcmp(f->str, limit_fields[k]) == 0) {
                n->limit[k] = strtoull(v->str, NULL, 10);
                n->limited |= n->limit[k] != 0;
            }
    }
    bool changed = false;
    for (int k = 0; k < NCOUNTS; k++)
        if (n->limit[k] != old[k]) {
            changed |= n->held[k] > n->use[k];
            n->held[k] = n->held[k] < n->use[k] ? n->held[k] : n->use[k];
            n->denied_ms[k] = 0;
        }
    if (n->limit[TN_QUOTA_PER_MINUTE] != old[TN_QUOTA_PER_MINUTE]) {
        changed |= n->tokens > 0;
        n->tokens = 0;
        n->pm_out_until = 0;
    }
    if (changed) { /* Redis learns what this node gave up */
        n->sync_due = true;
        space_due(n);
    }
}

/* ------------------------------------------------------------ decisions */

/* Day and minute that ended since the last script: their counts go. */
static void space_roll(space_t *n, uint64_t now)
{
    if (n->token_win && now >= n->token_end_ms) {
        n->tokens = 0;
        n->token_win = 0;
        n->minute_used = 0;
    }
    if (n->day_end_ms && now >= n->day_end_ms) {
        n->spent_nusd = 0;
        n->day_end_ms = 0;
    }
}

static uint64_t spent_pusd(const space_t *n)
{
    return (n->spent_nusd + n->sent_nusd) * PUSD_PER_NUSD + n->pending_pusd;
}

/* The refusal of quota k for a `kind` (of `mb` MB) in *r. */
static int refuse(space_t *n, tn_quota_t k, uint32_t mb, uint64_t now, inv_refusal_t *r)
{
    char a[40], b[40], wait[32];
    uint64_t lim = n->limit[k];
    const char *alone = n->down ? " (redis is unreachable: each node holds it to its own calls for now)" : "";
    r->quota = quota_names[k];
    r->retry_after_s = 1;
    if ((int)k < NCOUNTS) {
        static const char *const what[NCOUNTS] = {"calls at once", "sandboxes", "MB of sandboxes"};
        char note[96] = "";
        if (k == TN_QUOTA_SANDBOXES)
            snprintf(note, sizeof note, "; idle ones count until they close");
        else if (k == TN_QUOTA_MEMORY)
            snprintf(note, sizeof note, ", and this function's sandbox needs %" PRIu32 " MB", mb);
        snprintf(r->message, sizeof r->message,
                 "namespace %s is at its quota %s: %" PRIu64 " %s across the cluster (%" PRIu64 " now%s)%s", n->name,
                 quota_names[k], lim, what[k], n->use[k] + n->others_use[k], note, alone);
        return TINE_EQUOTA;
    }
    switch (k) {
    case TN_QUOTA_PER_MINUTE: {
        uint64_t left = n->token_end_ms > now ? (n->token_end_ms - now + 999) / 1000 : 1;
        r->retry_after_s = (uint32_t)(left ? left : 1);
        fmt_wait(r->retry_after_s, wait);
        snprintf(r->message, sizeof r->message,
                 "namespace %s is at its quota per_minute: %" PRIu64
                 " calls in this minute across the cluster (the next minute starts in %s)%s",
                 n->name, lim, wait, alone);
        break;
    }
    case TN_QUOTA_SPEND:
    default: {
        uint64_t left = n->day_end_ms > now ? (n->day_end_ms - now + 999) / 1000 : 1;
        r->retry_after_s = (uint32_t)(left ? left : 1);
        fmt_usd(spent_pusd(n), a);
        fmt_usd(lim, b);
        fmt_wait(r->retry_after_s, wait);
        snprintf(r->message, sizeof r->message,
                 "namespace %s is at its quota spend_per_day: $%s spent today of $%s (UTC days: the next starts in "
                 "%s)%s",
                 n->name, a, b, wait, alone);
        break;
    }
    }
    return TINE_EQUOTA;
}

/* What this node may hold of count k: its reservation, or while Redis is
 * away the whole limit; no limit: no bound. */
static uint64_t space_cap(const space_t *n, int k)
{
    if (n->limit[k] == 0)
        return UINT64_MAX;
    return n->down ? n->limit[k] : n->held[k];
}

/* Whether the refusal of count k (or of tokens, k == NCOUNTS) that the last
 * script gave still stands. */
static bool denial_fresh(const space_t *n, int k, uint64_t now)
{
    return n->denied_ms[k] && now - n->denied_ms[k] < TN_QUOTA_FRESH_MS;
}

/* Decides one call or sandbox: 0 (admitted and counted), TINE_EQUOTA (*r),
 * or -EAGAIN (Redis must be asked). `asked`: Redis was asked for it
 * already, so past the reservation it is refused. */
static int decide(space_t *n, inv_admit_kind_t kind, uint32_t mb, bool asked, inv_refusal_t *r)
{
    if (!n->limited)
        goto admit;
    uint64_t now = now_ms(n->q);
    space_roll(n, now);
    if (n->limit[TN_QUOTA_SPEND] && spent_pusd(n) >= n->limit[TN_QUOTA_SPEND])
        return refuse(n, TN_QUOTA_SPEND, mb, now, r);
    int ask = 0;
    if (kind == INV_ADMIT_CALL) {
        if (n->use[COUNT_CALLS] + 1 > space_cap(n, COUNT_CALLS)) {
            if (n->down || asked || denial_fresh(n, COUNT_CALLS, now))
                return refuse(n, TN_QUOTA_CONCURRENCY, mb, now, r);
            ask = -EAGAIN;
        }
        if (n->limit[TN_QUOTA_PER_MINUTE] && n->down) {
            uint64_t win = tine_now_unix_ms() / 60000;
            if (n->local_win != win)
                n->local_win = win, n->local_calls = 0;
            if (n->local_calls >= n->limit[TN_QUOTA_PER_MINUTE]) {
                n->token_end_ms = now + 60000 - tine_now_unix_ms() % 60000;
                return refuse(n, TN_QUOTA_PER_MINUTE, mb, now, r);
            }
        } else if (n->limit[TN_QUOTA_PER_MINUTE] && n->tokens == 0) {
            if (asked || now < n->pm_out_until)
                return refuse(n, TN_QUOTA_PER_MINUTE, mb, now, r);
            ask = -EAGAIN;
        }
    } else {
        bool sbx = n->use[COUNT_SANDBOXES] + 1 > space_cap(n, COUNT_SANDBOXES);
        bool mem = n->use[COUNT_MEMORY] + mb > space_cap(n, COUNT_MEMORY);
        if (sbx && (n->down || asked || denial_fresh(n, COUNT_SANDBOXES, now)))
            return refuse(n, TN_QUOTA_SANDBOXES, mb, now, r);
        if (mem && (n->down || asked || denial_fresh(n, COUNT_MEMORY, now)))
            return refuse(n, TN_QUOTA_MEMORY, mb, now, r);
        if (sbx || mem)
            ask = -EAGAIN;
    }
    if (ask)
        return ask;
admit:
    if (kind == INV_ADMIT_CALL) {
        n->use[COUNT_CALLS]++;
        n->calls_since++;
        n->local_calls++;
        if (n->limited && n->limit[TN_QUOTA_PER_MINUTE] && !n->down) {
            n->tokens--;
            /* Half the last grant spent: more are asked for before they run out. */
            if (n->tokens < n->last_grant / 2 && !n->syncing) {
                n->sync_due = true;
                space_due(n);
            }
        }
    } else {
        n->use[COUNT_SANDBOXES]++;
        n->use[COUNT_MEMORY] += mb;
    }
    for (int k = 0; k < NCOUNTS; k++)
        if (n->use[k] > n->peak[k])
            n->peak[k] = n->use[k];
    return 0;
}

static int quota_index(const char *name)
{
    for (int k = 0; k < TN_NQUOTAS; k++)
        if (quota_names[k] == name)
            return k;
    return TN_QUOTA_SPEND;
}

/* Whether the refusal of quota `name` came while other nodes held room of
 * it that they do not use. */
static bool held_elsewhere(const space_t *n, const char *name)
{
    int k = quota_index(name);
    if (k == TN_QUOTA_PER_MINUTE)
        return n->elsewhere[NCOUNTS] > 0;
    return k < NCOUNTS && n->elsewhere[k] > 0;
}

/* Answers the waiters that can be answered now (each asked waiter is
 * admitted or refused; one not asked yet waits for the next script). */
static void space_resolve(space_t *n)
{
    tine_list_t pending;
    tine_list_init(&pending);
    tine_list_splice_tail(&pending, &n->waiters);
    tine_list_t *l;
    while ((l = tine_list_pop_head(&pending)) != NULL) {
        waiter_t *w = tine_list_entry(l, waiter_t, link);
        inv_refusal_t r;
        int rc = decide(n, w->kind, w->mb, w->asked, &r);
        if (rc == TINE_EQUOTA && w->asked && w->tries < TN_QUOTA_RETRIES && !n->down && held_elsewhere(n, r.quota)) {
            /* Other nodes hold room they do not use, and give it back at
             * their next report: asked again after it. */
            w->tries++;
            w->asked = false;
            tine_list_insert_tail(&n->waiters, &w->link);
            n->retry_due = true; /* at the next tick */
            continue;
        }
        if (rc == -EAGAIN) {
            tine_list_insert_tail(&n->waiters, &w->link);
            n->sync_due = true;
            space_due(n);
            continue;
        }
        /* done may begin, end or forget here: w is off every list. */
        w->done(w->ticket, rc, &r);
        free(w);
    }
}

/* ------------------------------------------------------------ the script */

/* One node's round for namespace KEYS[1]'s limits (a hash) and its nodes'
 * entries (KEYS[2], node -> "t use1 held1 use2 held2 use3 held3 tokens win").
 * ARGV: 1 prefix of the namespace's keys ("tine:quota:{ns}:"), 2 node, 3
 * stale ms; 4..6 use of calls, sandboxes, MB; 7..9 wanted (use or recent
 * peak, and what waits); 10..12 use once what waits is admitted (the entry
 * shows it, within the grant, so that other nodes do not count that room
 * as unused); 13 tokens needed now, 14 tokens wanted ahead, 15 tokens held,
 * 16 their minute, 17 tokens given back; 18 spend to add (nanodollars).
 * Grants each count at most the limit less the other nodes' reservations;
 * past what it wants, a share of what is left (half of an equal share), so
 * nodes that come later find room. Returns {limited, grant1, grant2,
 * grant3, tokens granted, calls of the minute, minute, ms left in it, spend
 * today, ms left in the day, others' use 1..3, nodes, the limits hash,
 * others' reservations past their use 1..3, others' tokens}. The minute and
 * day come from Redis's clock, so every node counts the same. */
static const char sync_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local pre, me, stale = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local sk = pre .. 'spend:' .. math.floor(now / 86400000)\n"
    "local spent = tonumber(redis.call('GET', sk) or '0')\n"
    "if tonumber(ARGV[18]) > 0 then\n"
    "  spent = redis.call('INCRBY', sk, ARGV[18])\n"
    "  redis.call('PEXPIRE', sk, 259200000)\n"
    "end\n"
    "local win = math.floor(now / 60000)\n"
    "local out = {0, 0, 0, 0, 0, 0, win, 60000 - now % 60000, spent, 86400000 - now % 86400000, 0, 0, 0, 1, {},\n"
    "  0, 0, 0, 0}\n"
    "local lim = redis.call('HGETALL', KEYS[1])\n"
    "if #lim == 0 then\n"
    "  redis.call('HDEL', KEYS[2], me)\n"
    "  return out\n"
    "end\n"
    "out[1] = 1\n"
    "out[15] = lim\n"
    "local L = {}\n"
    "for i = 1, #lim, 2 do L[lim[i]] = tonumber(lim[i + 1]) end\n"
    "local n, res, use, others_tk = 1, {0, 0, 0}, {0, 0, 0}, 0\n"
    "local all = redis.call('HGETALL', KEYS[2])\n"
    "for i = 1, #all, 2 do\n"
    "  if all[i] ~= me then\n"
    "    local f = {}\n"
    "    for x in string.gmatch(all[i + 1], '%d+') do f[#f + 1] = tonumber(x) end\n"
    "    if #f < 9 or now - f[1] > stale then\n"
    "      redis.call('HDEL', KEYS[2], all[i])\n"
    "    else\n"
    "      n = n + 1\n"
    "      for k = 1, 3 do\n"
    "        use[k] = use[k] + f[2 * k]\n"
    "        res[k] = res[k] + f[2 * k + 1]\n"
    "        if f[2 * k + 1] > f[2 * k] then out[15 + k] = out[15 + k] + f[2 * k + 1] - f[2 * k] end\n"
    "      end\n"
    "      if f[9] == win then others_tk = others_tk + f[8] end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local names = {'concurrency', 'sandboxes', 'memory_mb'}\n"
    "local mine, grant, any = {}, {}, 0\n"
    "for k = 1, 3 do\n"
    "  mine[k] = tonumber(ARGV[3 + k])\n"
    "  local want = tonumber(ARGV[6 + k])\n"
    "  if want < mine[k] then want = mine[k] end\n"
    "  local l = L[names[k]]\n"
    "  if not l then grant[k] = want\n"
    "  else\n"
    "    local room = l - res[k]\n"
    "    if want == 0 then grant[k] = 0\n"
    "    elseif want <= room then grant[k] = want + math.floor((room - want) / (2 * n))\n"
    "    elseif mine[k] < room then grant[k] = room\n"
    "    else grant[k] = mine[k] end\n"
    "  end\n"
    "  out[1 + k] = grant[k]\n"
    "  local after = math.min(tonumber(ARGV[9 + k]), grant[k])\n"
    "  if after > mine[k] then mine[k] = after end\n"
    "  out[10 + k] = use[k]\n"
    "  any = any + mine[k] + grant[k]\n"
    "end\n"
    "local wk = pre .. 'minute:' .. win\n"
    "local held = 0\n"
    "if tonumber(ARGV[16]) == win then\n"
    "  held = tonumber(ARGV[15])\n"
    "  local back = tonumber(ARGV[17])\n"
    "  if back > 0 then\n"
    "    redis.call('DECRBY', wk, back)\n"
    "    held = held - back\n"
    "  end\n"
    "end\n"
    "local used = tonumber(redis.call('GET', wk) or '0')\n"
    "local pm = L['per_minute']\n"
    "if pm then\n"
    "  local left = pm - used\n"
    "  if left < 0 then left = 0 end\n"
    "  local g = math.min(tonumber(ARGV[13]), left)\n"
    "  g = g + math.min(tonumber(ARGV[14]), math.floor((left - g) / (2 * n)))\n"
    "  if g > 0 then\n"
    "    used = redis.call('INCRBY', wk, g)\n"
    "    redis.call('PEXPIRE', wk, 120000)\n"
    "  end\n"
    "  out[5] = g\n"
    "  held = held + g\n"
    "end\n"
    "out[6] = math.max(0, used - others_tk - held)\n"
    "out[19] = others_tk\n"
    "out[14] = n\n"
    "if any + held == 0 then\n"
    "  redis.call('HDEL', KEYS[2], me)\n"
    "else\n"
    "  redis.call('HSET', KEYS[2], me, string.format('%.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f', now, mine[1],\n"
    "    grant[1], mine[2], grant[2], mine[3], grant[3], held, win))\n"
    "  redis.call('PEXPIRE', KEYS[2], stale * 4)\n"
    "end\n"
    "return out\n";

static uint64_t reply_u64(const redisReply *a, size_t i)
{
    if (a == NULL || i >= a->elements)
        return 0;
    const redisReply *e = a->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer > 0 ? (uint64_t)e->integer : 0;
    if (e->type == REDIS_REPLY_STRING)
        return strtoull(e->str, NULL, 10);
    return 0;
}

/* The script failed (Redis away, or an error): the namespace's limits hold
 * for each node alone until a script succeeds again. */
static void space_went_down(space_t *n, const char *why)
{
    if (!n->down)
        tine_log(TINE_LOG_WARN,
                 "quotas: cannot reach redis for namespace %s (%s): each node holds the quotas to its own calls until "
                 "it is back",
                 n->name, why);
    n->down = true;
    /* Asked waiters are answered by the local rule. */
    space_resolve(n);
}

static void on_synced(void *data, redisReply *r)
{
    space_t *n = data;
    n->syncing = false;
    if (n->q->closing)
        return;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 19) {
        /* Whether the spend landed is unknown: not sent again (it may have). */
        n->sent_nusd = 0;
        space_went_down(n, r && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
        return;
    }
    uint64_t now = now_ms(n->q);
    if (n->down)
        tine_log(TINE_LOG_INFO, "quotas: redis answers again for namespace %s", n->name);
    n->down = false;
    n->sent_nusd = 0;
    space_set_limits(n, reply_u64(r, 0) ? r->element[14] : NULL);
    for (int k = 0; k <= NCOUNTS; k++)
        n->elsewhere[k] = reply_u64(r, 15 + (size_t)k);
    for (int k = 0; k < NCOUNTS; k++) {
        n->held[k] = reply_u64(r, 1 + (size_t)k);
        n->others_use[k] = reply_u64(r, 10 + (size_t)k);
        /* A refusal stands while nobody holds room in reserve; else the
         * next call asks again (that room comes back). */
        n->denied_ms[k] = n->held[k] < n->asked[k] && n->elsewhere[k] == 0 ? now : 0;
    }
    uint64_t win = reply_u64(r, 6), granted = reply_u64(r, 4);
    if (n->token_win != win)
        n->tokens = 0;
    n->tokens += granted;
    n->last_grant = granted;
    n->token_win = win;
    n->token_end_ms = now + reply_u64(r, 7);
    n->minute_used = reply_u64(r, 5);
    if (granted < n->asked[NCOUNTS] && n->limit[TN_QUOTA_PER_MINUTE] && n->elsewhere[NCOUNTS] == 0)
        n->pm_out_until = n->token_end_ms; /* nothing left in this minute */
    n->spent_nusd = reply_u64(r, 8);
    n->day_end_ms = now + reply_u64(r, 9);
    n->nodes = (unsigned)reply_u64(r, 13);
    space_resolve(n);
    if (n->sync_due)
        space_due(n); /* waiters that came meanwhile */
}

/* Sends the namespace's script: its use, what its waiters need (each
 * marked asked), its spend. `periodic`: tokens unused since the last one
 * are given back. */
static void space_sync(space_t *n, bool periodic)
{
    tn_quotas_t *q = n->q;
    n->sync_due = false;
    n->retry_due = false;
    if (n->syncing) {
        n->sync_due = true; /* after this one */
        return;
    }
    uint64_t need[NCOUNTS] = {0}, need_tokens = 0;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &n->waiters) {
        waiter_t *w = tine_list_entry(l, waiter_t, link);
        w->asked = true;
        if (w->kind == INV_ADMIT_CALL) {
            need[COUNT_CALLS]++;
            need_tokens++;
        } else {
            need[COUNT_SANDBOXES]++;
            need[COUNT_MEMORY] += w->mb;
        }
    }
    uint64_t want[NCOUNTS];
    for (int k = 0; k < NCOUNTS; k++) {
        want[k] = (n->peak[k] > n->use[k] ? n->peak[k] : n->use[k]) + need[k];
        n->asked[k] = n->use[k] + need[k];
        n->peak[k] = n->use[k];
    }
    space_roll(n, now_ms(n->q));
    uint64_t back = periodic && n->calls_since == 0 ? n->tokens : 0;
    uint64_t ahead = 2 * n->calls_since;
    n->asked[NCOUNTS] = need_tokens;
    n->calls_since = 0;
    uint64_t nusd = n->pending_pusd / PUSD_PER_NUSD;
    char key[300], prefix[300], stale[24], nums[15][24];
    snprintf(key, sizeof key, "%s%s", RDS_KEY_QUOTA_PREFIX, n->name);
    snprintf(prefix, sizeof prefix, "%s%s:", RDS_KEY_QUOTA_PREFIX, n->name);
    char nodes_key[320];
    snprintf(nodes_key, sizeof nodes_key, "%s%s:nodes", RDS_KEY_QUOTA_PREFIX, n->name);
    tine_fmt_u64(stale, TN_QUOTA_STALE_MS, 1);
    const uint64_t v[15] = {n->use[0], n->use[1],   n->use[2],    want[0],     want[1],
                            want[2],   n->asked[0], n->asked[1],  n->asked[2], need_tokens,
                            ahead,     n->tokens,   n->token_win, back,        nusd};
    for (int i = 0; i < 15; i++)
        tine_fmt_u64(nums[i], v[i], 1);
    const char *argv[24] = {"EVAL", sync_lua, "2", key, nodes_key, prefix, q->node_id, stale};
    int argc = 8;
    for (int i = 0; i < 15; i++)
        argv[argc++] = nums[i];
    size_t lens[24];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (rds_async_command(q->cmd, on_synced, n, argc, argv, lens) != 0) {
        space_went_down(n, "redis is unreachable");
        return;
    }
    n->syncing = true;
    n->pending_pusd -= nusd * PUSD_PER_NUSD;
    n->sent_nusd = nusd;
    n->tokens -= back;
}

/* ------------------------------------------------------------ the hooks */

static void *hook_ns(void *data, const char *ns)
{
    return space_get(data, ns);
}

static int hook_begin(void *ns, inv_admit_kind_t kind, uint32_t memory_mb, inv_admit_done_cb done, void *ticket,
                      inv_refusal_t *r)
{
    space_t *n = ns;
    int rc = decide(n, kind, memory_mb, false, r);
    if (rc != -EAGAIN)
        return rc;
    waiter_t *w = xcalloc(1, sizeof(*w));
    w->kind = kind;
    w->mb = memory_mb;
    w->done = done;
    w->ticket = ticket;
    tine_list_insert_tail(&n->waiters, &w->link);
    /* Asked at the end of the loop turn, with the others that come in it. */
    n->sync_due = true;
    space_due(n);
    return -EAGAIN;
}

static void hook_forget(void *ns, void *ticket)
{
    space_t *n = ns;
    tine_list_t *l, *tmp;
    TINE_LIST_FOREACH_SAFE(l, tmp, &n->waiters) {
        waiter_t *w = tine_list_entry(l, waiter_t, link);
        if (w->ticket == ticket) {
            tine_list_remove(&w->link);
            free(w);
        }
    }
}

static void hook_end(void *ns, inv_admit_kind_t kind, uint32_t memory_mb)
{
    space_t *n = ns;
    if (kind == INV_ADMIT_CALL) {
        if (n->use[COUNT_CALLS])
            n->use[COUNT_CALLS]--;
    } else {
        if (n->use[COUNT_SANDBOXES])
            n->use[COUNT_SANDBOXES]--;
        n->use[COUNT_MEMORY] -= n->use[COUNT_MEMORY] >= memory_mb ? memory_mb : n->use[COUNT_MEMORY];
    }
    if (!tine_list_empty(&n->waiters)) {
        n->resolve_due = true; /* room freed here: answered at the end of the loop turn */
        space_due(n);
    }
}

const inv_admission_t *tn_quotas_admission(tn_quotas_t *q)
{
    return &q->hooks;
}

void tn_quotas_spent(tn_quotas_t *q, const char *ns, uint64_t pusd)
{
    if (q == NULL || ns == NULL || pusd == 0)
        return;
    space_t *n = space_find(q, ns);
    if (n == NULL)
        n = space_get(q, ns);
    n->pending_pusd += pusd;
}

/* ------------------------------------------------------------ the loop */

/* The end of a loop turn: waiters that may be answered are, and the
 * scripts due go out (one per namespace, for every waiter of the turn). */
static void on_check(uv_check_t *h)
{
    tn_quotas_t *q = h->data;
    tine_list_t *l;
    while ((l = tine_list_pop_head(&q->due)) != NULL) {
        space_t *n = tine_list_entry(l, space_t, due_link);
        if (n->resolve_due) {
            n->resolve_due = false;
            space_resolve(n);
        }
        if (n->sync_due && !n->syncing)
            space_sync(n, false);
    }
    uv_check_stop(h);
}

static void reload_limits(tn_quotas_t *q);

static void on_gen(void *data, redisReply *r)
{
    tn_quotas_t *q = data;
    if (r == NULL || q->closing)
        return;
    long long gen = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    if (gen != q->gen)
        reload_limits(q);
}

/* Every TN_QUOTA_SYNC_MS: each namespace with a limit and something to
 * report (use, a reservation, tokens) or a spend limit, and each with spend
 * to add, has its script; every TN_QUOTA_GEN_MS the generation of the
 * limits is checked. */
static void on_tick(uv_timer_t *t)
{
    tn_quotas_t *q = t->data;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &q->spaces) {
        space_t *n = tine_list_entry(l, space_t, link);
        bool busy = false;
        for (int k = 0; k < NCOUNTS; k++)
            busy |= n->use[k] || n->held[k] || n->peak[k];
        /* A spend limit: followed even when idle, so that the day's spend
         * is known here before a call comes. */
        busy |= n->tokens || n->calls_since || n->limit[TN_QUOTA_SPEND];
        if ((n->limited && busy) || n->pending_pusd >= PUSD_PER_NUSD || n->sync_due || n->retry_due)
            space_sync(n, true);
    }
    if (++q->ticks % (TN_QUOTA_GEN_MS / TN_QUOTA_SYNC_MS) == 0 && !q->reloading) {
        const char *argv[] = {"GET", RDS_KEY_QUOTAS_GEN};
        size_t lens[] = {3, strlen(RDS_KEY_QUOTAS_GEN)};
        rds_async_command(q->cmd, on_gen, q, 2, argv, lens);
    }
}

/* Returns {gen, ns1, {field, value...}, ns2, {...}, ...}: every
 * namespace's limits at one instant. */
static const char all_lua[] = "local out = {redis.call('GET', KEYS[2]) or '0'}\n"
                              "for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
                              "  out[#out + 1] = ns\n"
                              "  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. ns)\n"
                              "end\n"
                              "return out\n";

/* Applies an all_lua reply: every namespace gets its limits, or none. */
static void apply_all(tn_quotas_t *q, const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return;
    tine_list_t *l;
    TINE_LIST_FOREACH(l, &q->spaces) {
        space_t *n = tine_list_entry(l, space_t, link);
        const redisReply *pairs = NULL; /* not in the reply: no quota */
        for (size_t i = 1; i + 1 < r->elements && pairs == NULL; i += 2)
            if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, n->name) == 0)
                pairs = r->element[i + 1];
        space_set_limits(n, pairs);
    }
    for (size_t i = 1; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && space_find(q, r->element[i]->str) == NULL)
            space_set_limits(space_get(q, r->element[i]->str), r->element[i + 1]);
    q->gen = (long long)reply_u64(r, 0);
    /* Waiters of a namespace whose limits went may be admitted now. */
    TINE_LIST_FOREACH(l, &q->spaces) {
        space_t *n = tine_list_entry(l, space_t, link);
        if (!tine_list_empty(&n->waiters)) {
            n->resolve_due = true;
            space_due(n);
        }
    }
}

static void on_all(void *data, redisReply *r)
{
    tn_quotas_t *q = data;
    q->reloading = false;
    if (!q->closing)
        apply_all(q, r);
}

static void reload_limits(tn_quotas_t *q)
{
    const char *argv[] = {"EVAL", all_lua, "2", RDS_KEY_QUOTAS, RDS_KEY_QUOTAS_GEN, RDS_KEY_QUOTA_PREFIX};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (rds_async_command(q->cmd, on_all, q, 6, argv, lens) == 0)
        q->reloading = true;
}

/* ------------------------------------------------------------ admin calls */

static int status_of_reply(redisReply *r, const char *what, char *err, size_t errlen)
{
    if (r == NULL)
        return TINE_EREDIS;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %s", what, r->str);
        return TINE_EREDIS;
    }
    return 0;
}

/* Sets, keeps ("-") or removes ("") each limit and records who changed
 * them when, in one step: KEYS[1] the namespace's hash, KEYS[2]
 * tine:quotas, KEYS[3] the generation; ARGV: ns, the five limits (as
 * limit_fields), the time, who. Returns the hash. */
static const char set_lua[] = "local fields = {'concurrency', 'sandboxes', 'memory_mb', 'per_minute', 'spend_pusd'}\n"
                              "local any = false\n"
                              "for i, f in ipairs(fields) do\n"
                              "  local v = ARGV[1 + i]\n"
                              "  if v == '' then redis.call('HDEL', KEYS[1], f)\n"
                              "  elseif v ~= '-' then redis.call('HSET', KEYS[1], f, v) end\n"
                              "  if redis.call('HEXISTS', KEYS[1], f) == 1 then any = true end\n"
                              "end\n"
                              "if any then\n"
                              "  redis.call('HSET', KEYS[1], 'set', ARGV[7], 'by', ARGV[8])\n"
                              "  redis.call('SADD', KEYS[2], ARGV[1])\n"
                              "else\n"
                              "  redis.call('DEL', KEYS[1])\n"
                              "  redis.call('SREM', KEYS[2], ARGV[1])\n"
                              "end\n"
                              "redis.call('INCR', KEYS[3])\n"
                              "return redis.call('HGETALL', KEYS[1])\n";

/* What GET /namespaces/{ns}/quota shows: KEYS[1] the limits, KEYS[2] the
 * nodes' entries; ARGV[1] the keys' prefix, ARGV[2] stale ms. Returns
 * {limits, calls, sandboxes, MB, calls this minute, ms left in it, spend
 * today (nanodollars), ms left in the day, nodes}. */
static const char read_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local win = math.floor(now / 60000)\n"
    "local use, held, n = {0, 0, 0}, 0, 0\n"
    "local all = redis.call('HGETALL', KEYS[2])\n"
    "for i = 1, #all, 2 do\n"
    "  local f = {}\n"
    "  for x in string.gmatch(all[i + 1], '%d+') do f[#f + 1] = tonumber(x) end\n"
    "  if #f >= 9 and now - f[1] <= tonumber(ARGV[2]) then\n"
    "    n = n + 1\n"
    "    for k = 1, 3 do use[k] = use[k] + f[2 * k] end\n"
    "    if f[9] == win then held = held + f[8] end\n"
    "  end\n"
    "end\n"
    "local used = tonumber(redis.call('GET', ARGV[1] .. 'minute:' .. win) or '0') - held\n"
    "if used < 0 then used = 0 end\n"
    "local spent = redis.call('GET', ARGV[1] .. 'spend:' .. math.floor(now / 86400000)) or '0'\n"
    "return {redis.call('HGETALL', KEYS[1]), use[1], use[2], use[3], used, 60000 - now % 60000, spent,\n"
    "  86400000 - now % 86400000, n}\n";

static json_t *limit_json(const uint64_t *limit, int k)
{
    if (limit[k] == 0)
        return json_null();
    if (k == TN_QUOTA_SPEND) {
        char usd[40];
        fmt_usd(limit[k], usd);
        return json_string(usd);
    }
    return json_integer((json_int_t)limit[k]);
}

/* The limits of a hash reply's pairs, and who set them when. */
static void parse_hash(const redisReply *pairs, uint64_t limit[TN_NQUOTAS], int64_t *set_ms, char *by, size_t bylen)
{
    memset(limit, 0, TN_NQUOTAS * sizeof(*limit));
    *set_ms = 0;
    by[0] = '\0';
    for (size_t i = 0; pairs && pairs->type == REDIS_REPLY_ARRAY && i + 1 < pairs->elements; i += 2) {
        const redisReply *f = pairs->element[i], *v = pairs->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        for (int k = 0; k < TN_NQUOTAS; k++)
            if (strcmp(f->str, limit_fields[k]) == 0)
                limit[k] = strtoull(v->str, NULL, 10);
        if (strcmp(f->str, "set") == 0)
            *set_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(f->str, "by") == 0)
            snprintf(by, bylen, "%s", v->str);
    }
}

/* The JSON of one namespace from a read_lua reply. */
static json_t *read_json(const char *ns, const redisReply *r)
{
    uint64_t limit[TN_NQUOTAS];
    int64_t set_ms;
    char by[128], when[32] = "";
    parse_hash(r->element[0], limit, &set_ms, by, sizeof by);
    if (set_ms)
        tine_fmt_rfc3339_ms((uint64_t)set_ms, when);
    uint64_t spent = reply_u64(r, 6) * PUSD_PER_NUSD;
    char usd[40];
    fmt_usd(spent, usd);
    json_t *quotas = json_object();
    for (int k = 0; k < TN_QUOTA_PER_MINUTE; k++)
        json_object_set_new(
            quotas, quota_names[k],
            json_pack("{s:o, s:I}", "limit", limit_json(limit, k), "used", (json_int_t)reply_u64(r, 1 + (size_t)k)));
    json_object_set_new(quotas, quota_names[TN_QUOTA_PER_MINUTE],
                        json_pack("{s:o, s:I, s:I}", "limit", limit_json(limit, TN_QUOTA_PER_MINUTE), "used",
                                  (json_int_t)reply_u64(r, 4), "resets_in_s",
                                  (json_int_t)((reply_u64(r, 5) + 999) / 1000)));
    json_object_set_new(quotas, quota_names[TN_QUOTA_SPEND],
                        json_pack("{s:o, s:s, s:I, s:I, s:I}", "limit", limit_json(limit, TN_QUOTA_SPEND), "used", usd,
                                  "limit_pusd", (json_int_t)limit[TN_QUOTA_SPEND], "used_pusd", (json_int_t)spent,
                                  "resets_in_s", (json_int_t)((reply_u64(r, 7) + 999) / 1000)));
    return json_pack("{s:s, s:o, s:o, s:o, s:I}", "namespace", ns, "quotas", quotas, "set",
                     when[0] ? json_string(when) : json_null(), "set_by", by[0] ? json_string(by) : json_null(),
                     "nodes", (json_int_t)reply_u64(r, 8));
}

int tn_quotas_read(tn_quotas_t *q, const char *ns, json_t **out, char *err, size_t errlen)
{
    char key[300], prefix[300], nodes[320];
    snprintf(key, sizeof key, "%s%s", RDS_KEY_QUOTA_PREFIX, ns);
    snprintf(prefix, sizeof prefix, "%s%s:", RDS_KEY_QUOTA_PREFIX, ns);
    snprintf(nodes, sizeof nodes, "%s%s:nodes", RDS_KEY_QUOTA_PREFIX, ns);
    redisReply *r = rds_sync_command(q->sync, err, errlen, "EVAL %s 2 %s %s %s %d", read_lua, key, nodes, prefix,
                                     TN_QUOTA_STALE_MS);
    int rc = status_of_reply(r, "quotas", err, errlen);
    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements < 9)) {
        snprintf(err, errlen, "quotas: unexpected answer from redis");
        rc = TINE_EREDIS;
    }
    if (rc == 0)
        *out = read_json(ns, r);
    freeReplyObject(r);
    return rc;
}

int tn_quotas_list(tn_quotas_t *q, const char *only, json_t **out, char *err, size_t errlen)
{
    redisReply *r = rds_sync_command(q->sync, err, errlen, "SMEMBERS %s", RDS_KEY_QUOTAS);
    int rc = status_of_reply(r, "quotas", err, errlen);
    if (rc != 0) {
        freeReplyObject(r);
        return rc;
    }
    json_t *arr = json_array();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc == 0; i++) {
        const char *ns = r->element[i]->str;
        if (r->element[i]->type != REDIS_REPLY_STRING || (only && strcmp(only, ns) != 0))
            continue;
        json_t *one = NULL;
        if ((rc = tn_quotas_read(q, ns, &one, err, errlen)) == 0)
            json_array_append_new(arr, one);
    }
    freeReplyObject(r);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    /* By namespace, as the other lists. */
    size_t n = json_array_size(arr);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get(arr, j - 1), *b = json_array_get(arr, j);
            if (strcmp(json_string_value(json_object_get(a, "namespace")),
                       json_string_value(json_object_get(b, "namespace"))) <= 0)
                break;
            json_incref(a);
            json_array_set(arr, j - 1, b);
            json_array_set_new(arr, j, a);
        }
    *out = json_pack("{s:o}", "quotas", arr);
    return 0;
}

int tn_quotas_set(tn_quotas_t *q, const char *ns, const tn_quota_change_t *c, const char *by, char *err, size_t errlen)
{
    char key[300], when[24], vals[TN_NQUOTAS][24];
    snprintf(key, sizeof key, "%s%s", RDS_KEY_QUOTA_PREFIX, ns);
    tine_fmt_u64(when, tine_now_unix_ms(), 1);
    bool any = false;
    for (int k = 0; k < TN_NQUOTAS; k++) {
        snprintf(vals[k], sizeof vals[k], "-");
        if (!c->set[k])
            continue;
        if (c->value[k] > quota_max[k]) {
            snprintf(err, errlen, "%s: at most %" PRIu64, quota_names[k], quota_max[k]);
            return TINE_EINVAL;
        }
        any = true;
        vals[k][0] = '\0';
        if (c->value[k])
            tine_fmt_u64(vals[k], c->value[k], 1);
    }
    if (!any) {
        snprintf(err, errlen, "no quota given");
        return TINE_EINVAL;
    }
    redisReply *r = rds_sync_command(q->sync, err, errlen, "EVAL %s 3 %s %s %s %s %s %s %s %s %s %s %s", set_lua, key,
                                     RDS_KEY_QUOTAS, RDS_KEY_QUOTAS_GEN, ns, vals[0], vals[1], vals[2], vals[3],
                                     vals[4], when, by ? by : "-");
    int rc = status_of_reply(r, "quotas", err, errlen);
    if (rc == 0) {
        /* This node knows at once; the others at their next generation check. */
        space_set_limits(space_get(q, ns), r);
        space_t *n = space_find(q, ns);
        n->resolve_due = !tine_list_empty(&n->waiters);
        if (n->resolve_due)
            space_due(n);
    }
    freeReplyObject(r);
    return rc;
}

static const char delete_lua[] = "redis.call('DEL', KEYS[1], KEYS[2])\n"
                                 "if redis.call('SREM', KEYS[3], ARGV[1]) == 1 then redis.call('INCR', KEYS[4]) end\n"
                                 "return 1\n";

int tn_quotas_delete(tn_quotas_t *q, const char *ns, char *err, size_t errlen)
{
    char key[300], nodes[320];
    snprintf(key, sizeof key, "%s%s", RDS_KEY_QUOTA_PREFIX, ns);
    snprintf(nodes, sizeof nodes, "%s%s:nodes", RDS_KEY_QUOTA_PREFIX, ns);
    redisReply *r = rds_sync_command(q->sync, err, errlen, "EVAL %s 4 %s %s %s %s %s", delete_lua, key, nodes,
                                     RDS_KEY_QUOTAS, RDS_KEY_QUOTAS_GEN, ns);
    int rc = status_of_reply(r, "quotas", err, errlen);
    freeReplyObject(r);
    space_t *n = space_find(q, ns);
    if (rc == 0 && n)
        space_set_limits(n, NULL);
    return rc;
}

/* ------------------------------------------------------------ life */

tn_quotas_t *tn_quotas_new(uv_loop_t *loop, const char *redis_url, const char *node_id, char *err, size_t errlen)
{
    rds_sync_t *sync = rds_sync_new(redis_url, TN_QUOTA_SYNC_TIMEOUT_MS, err, errlen);
    if (sync == NULL)
        return NULL;
    tn_quotas_t *q = xcalloc(1, sizeof(*q));
    q->loop = loop;
    /* This process's entries: two nodes given the same id (a port chosen
     * by the system is "HOST:0" in each) still count apart. */
    q->node_id = xasprintf("%s/%d", node_id ? node_id : "node", (int)getpid());
    q->sync = sync;
    tine_list_init(&q->spaces);
    tine_list_init(&q->due);
    q->hooks = (inv_admission_t){hook_ns, hook_begin, hook_forget, hook_end, q};
    redisReply *all = rds_sync_command(sync, err, errlen, "EVAL %s 2 %s %s %s", all_lua, RDS_KEY_QUOTAS,
                                       RDS_KEY_QUOTAS_GEN, RDS_KEY_QUOTA_PREFIX);
    if (all && all->type == REDIS_REPLY_ARRAY) {
        apply_all(q, all);
    } else {
        /* Redis away at the start: limits are read once it is back (no
         * generation matches -1). */
        tine_log(TINE_LOG_WARN, "quotas: cannot read the quotas: %s (retrying every %d ms)", err, TN_QUOTA_GEN_MS);
        q->gen = -1;
    }
    freeReplyObject(all);
    /* A script sent while the connection is down (not up yet at the start,
     * or reconnecting) waits a moment for it; past that its admissions are
     * decided by this node alone. A Redis that stopped answering is judged
     * down after TN_QUOTA_REPLY_TIMEOUT_MS: calls wait at most that long. */
    rds_async_config_t cfg = {.name = "tenancy-quotas",
                              .when_down = RDS_WAIT_WHEN_DOWN,
                              .max_waiting = 10000,
                              .max_wait_ms = TN_QUOTA_DOWN_WAIT_MS,
                              .reply_timeout_ms = TN_QUOTA_REPLY_TIMEOUT_MS};
    if (rds_async_new(loop, redis_url, &cfg, &q->cmd, err, errlen) != 0) {
        rds_sync_free(q->sync);
        free(q->node_id);
        free(q);
        return NULL;
    }
    q->tick = xmalloc(sizeof(*q->tick));
    uv_timer_init(loop, q->tick);
    q->tick->data = q;
    uv_timer_start(q->tick, on_tick, TN_QUOTA_SYNC_MS, TN_QUOTA_SYNC_MS);
    q->check = xmalloc(sizeof(*q->check));
    uv_check_init(loop, q->check);
    q->check->data = q;
    return q;
}

/* The last handle to close frees the rest. */
static void release(tn_quotas_t *q)
{
    if (--q->handles_open > 0)
        return;
    tine_list_t *l;
    while ((l = tine_list_pop_head(&q->spaces)) != NULL) {
        space_t *n = tine_list_entry(l, space_t, link);
        tine_list_t *w;
        while ((w = tine_list_pop_head(&n->waiters)) != NULL)
            free(tine_list_entry(w, waiter_t, link));
        free(n);
    }
    free(q->node_id);
    free(q);
}

static void on_handle_closed(uv_handle_t *h)
{
    tn_quotas_t *q = h->data;
    free(h);
    release(q);
}

static void on_cmd_closed(void *data)
{
    release(data);
}

void tn_quotas_free(tn_quotas_t *q)
{
    if (q == NULL)
        return;
    q->closing = true;
    q->handles_open = 1;
    rds_sync_free(q->sync);
    q->sync = NULL;
    q->handles_open += 2;
    uv_close((uv_handle_t *)q->tick, on_handle_closed);
    uv_close((uv_handle_t *)q->check, on_handle_closed);
    if (q->cmd) {
        q->handles_open++;
        rds_async_close(q->cmd, false, on_cmd_closed, q);
    }
    release(q);
}
