/* The release state of an app in Redis (docs/releases.md): its tags
 * (tine:app:{app}:tags, tag -> version) and its split
 * (tine:app:{app}:split, {version, percent}). Every change is announced on
 * RDS_CHANNEL_DEPLOYS like a deploy, so nodes learn it as they learn live
 * versions and a request never asks Redis. */
#include "store_internal.h"
#include "tine_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads live, split, the version of a rollout under way and tags in one
 * step: {live, split version, split percent, rollout version, split
 * events, tag, version, tag, version...}. */
static const char read_script[] = "local live = redis.call('GET', KEYS[1]) or '0' "
                                  "local s = redis.call('HMGET', KEYS[2], 'version', 'percent', 'events') "
                                  "local r = redis.call('HMGET', KEYS[4], 'version', 'state') "
                                  "local rv = '0' "
                                  "if r[2] == 'running' or r[2] == 'paused' then rv = r[1] or '0' end "
                                  "local out = {live, s[1] or '0', s[2] or '0', rv, s[3] or '0'} "
                                  "for _, x in ipairs(redis.call('HGETALL', KEYS[3])) do out[#out + 1] = x end "
                                  "return out";

void reg_release_dispose(reg_release_t *r)
{
    free(r->tags);
    memset(r, 0, sizeof(*r));
}

int reg_store_release(reg_store_t *s, const char *app, reg_release_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    redisReply *r = reg__store_cmd(s, err, errlen,
                                   "EVAL %s 4 " RDS_KEY_APP_PREFIX "%s:live " RDS_KEY_APP_PREFIX
                                   "%s:split " RDS_KEY_APP_PREFIX "%s:tags " RDS_KEY_ROLLOUT_PREFIX "%s",
                                   read_script, app, app, app, app);
    if (r == NULL)
        return TINE_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 5) {
        freeReplyObject(r);
        snprintf(err, errlen, "redis: unexpected answer reading the release of %s", app);
        return TINE_EREDIS;
    }
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            snprintf(err, errlen, "redis: unexpected answer reading the release of %s", app);
            return TINE_EREDIS;
        }
    out->live = strtoull(r->element[0]->str, NULL, 10);
    out->split_version = strtoull(r->element[1]->str, NULL, 10);
    out->split_percent = (unsigned)strtoul(r->element[2]->str, NULL, 10);
    if (out->split_version == 0 || out->split_percent > 100) {
        out->split_version = 0;
        out->split_percent = 0;
    }
    out->rollout_version = strtoull(r->element[3]->str, NULL, 10);
    out->split_events = out->split_version != 0 && strcmp(r->element[4]->str, "1") == 0;
    size_t ntags = (r->elements - 5) / 2;
    out->tags = xcalloc(ntags + 1, sizeof(*out->tags));
    for (size_t i = 0; i < ntags; i++) {
        const redisReply *name = r->element[5 + 2 * i], *v = r->element[6 + 2 * i];
        if (!reg_tag_name_valid(name->str, name->len))
            continue; /* never written so: ignored */
        memcpy(out->tags[out->ntags].name, name->str, name->len);
        out->tags[out->ntags++].version = strtoull(v->str, NULL, 10);
    }
    freeReplyObject(r);
    return 0;
}

/* Sets (version > 0) or removes a field of an app's release hash or a tag,
 * refusing a version that is not stored, and announces the change. */
static const char change_script[] = "if ARGV[1] ~= '0' and redis.call('EXISTS', KEYS[2]) == 0 then return -1 end "
                                    "if redis.call('EXISTS', KEYS[3]) == 0 then return -2 end "
                                    "if ARGV[2] == 'split' then "
                                    "  local st = redis.call('HGET', KEYS[4], 'state') "
                                    "  if st == 'running' or st == 'paused' then return -5 end "
                                    "end "
                                    "if ARGV[2] == 'tag' then "
                                    "  if ARGV[1] == '0' then "
                                    "    if redis.call('HDEL', KEYS[1], ARGV[3]) == 0 then return -3 end "
                                    "  else redis.call('HSET', KEYS[1], ARGV[3], ARGV[1]) end "
                                    "elseif ARGV[1] == '0' then redis.call('DEL', KEYS[1]) "
                                    "else "
                                    "  if redis.call('GET', KEYS[3]) == ARGV[1] then return -4 end "
                                    "  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'percent', ARGV[3], 'events', ARGV[6]) "
                                    "end "
                                    "redis.call('PUBLISH', ARGV[4], ARGV[5]) "
                                    "return 0";

/* Runs change_script on `key` of app (what: "tag" with arg the tag name, or
 * "split" with arg the percent and events "1" or "0") and says why it
 * refused. */
static int release_change(reg_store_t *s, const char *app, const char *key, uint64_t version, const char *what,
                          const char *arg, const char *events, char *err, size_t errlen)
{
    char note[512];
    snprintf(note, sizeof note, "%s release", app);
    redisReply *r =
        reg__store_cmd(s, err, errlen,
                       "EVAL %s 4 " RDS_KEY_APP_PREFIX "%s:%s " RDS_KEY_APP_PREFIX "%s:v:%" PRIu64
                       " " RDS_KEY_APP_PREFIX "%s:live " RDS_KEY_ROLLOUT_PREFIX "%s %" PRIu64 " %s %s %s %s %s",
                       change_script, app, key, app, version, app, app, version, what, arg, RDS_CHANNEL_DEPLOYS, note,
                       events);
    if (r == NULL)
        return TINE_EREDIS;
    long long rc = r->type == REDIS_REPLY_INTEGER ? r->integer : -9;
    freeReplyObject(r);
    switch (rc) {
    case 0:
        break;
    case -1:
        snprintf(err, errlen, "%s has no version %" PRIu64 " (tine versions %s lists them)", app, version, app);
        return TINE_ENOTFOUND;
    case -2:
        snprintf(err, errlen, "no app named '%s' is live", app);
        return TINE_ENOTFOUND;
    case -3:
        snprintf(err, errlen, "%s has no tag '%s'", app, arg);
        return TINE_ENOTFOUND;
    case -5:
        snprintf(err, errlen,
                 "a rollout of %s is under way and steers its split (tine rollout status %s; tine rollout abort %s "
                 "ends it)",
                 app, app, app);
        return TINE_ECONFLICT;
    case -4:
        snprintf(err, errlen, "%s version %" PRIu64 " is the live version: a split sends a share to another one", app,
                 version);
        return TINE_EINVAL;
    default:
        snprintf(err, errlen, "redis: unexpected answer changing the release of %s", app);
        return TINE_EREDIS;
    }
    char done[600];
    snprintf(done, sizeof done, "the %s of %s was changed on the redis master", what, app);
    return reg__store_confirm(s, done, "do it again to be sure", err, errlen);
}

int reg_store_tag(reg_store_t *s, const char *app, const char *tag, uint64_t version, char *err, size_t errlen)
{
    if (!reg_tag_name_valid(tag, strlen(tag))) {
        snprintf(err, errlen,
                 "tag '%s': expected 1 to %d of a-z, 0-9 and '-', starting with a letter (a number is a version)", tag,
                 REG_TAG_MAX);
        return TINE_EINVAL;
    }
    return release_change(s, app, "tags", version, "tag", tag, "0", err, errlen);
}

int reg_store_split(reg_store_t *s, const char *app, uint64_t version, unsigned percent, bool events, char *err,
                    size_t errlen)
{
    if (percent > 100) {
        snprintf(err, errlen, "percent %u is outside 0..100", percent);
        return TINE_EINVAL;
    }
    char pc[16];
    snprintf(pc, sizeof pc, "%u", percent);
    return release_change(s, app, "split", version, "split", pc, events ? "1" : "0", err, errlen);
}
