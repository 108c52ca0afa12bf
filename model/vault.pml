/*
 * backvault vault: the attempt-counter protocol of a login start, model-checked.
 *
 * What is modelled (docs/ARCHITECTURE.md "The counter protocol, model-checked" maps each
 * step to src/vault/vault-service.ts):
 *   - NC clients sending login starts with request ids (and, for the attacker client, a
 *     second KE1 under the same id), resending and duplicating them at will, and — for the
 *     owner — login finishes for answers it received (a success resets the counter);
 *   - 2 vault nodes taking any request, crashing at any step (losing what they held in
 *     memory) and restarting; answers may be lost;
 *   - the record store: compare-and-swap on a version; linearizable reads return the
 *     current record, serializable (possibly stale) reads the previous committed one;
 *   - the idempotent retry (stored answer per request id and login epoch) and the pacing
 *     delay (after FREE counted guesses, no start before lastStart + DELAY);
 *   - a clock that only moves forward.
 * Properties (asserts, checked in every reachable state; `make model` also runs mutants,
 * each of which must be caught):
 *   P1 never more than LIMIT OPAQUE answers per login epoch (between two successes);
 *   P2 a LOCKED record never answers again (no replay from a stale pre-lock read);
 *   P3 a retry never increments twice (a request id is counted at most once per epoch);
 *   P4 no schedule spends a guess before the pacing allows it.
 * Mutants (-D): BUG_STALE_REPLAY, BUG_NO_IDEMPOTENCY, BUG_PACING_IN_NODE, BUG_BLIND_WRITE.
 */
#define NC     2            /* clients: 0 = owner, 1 = attacker holding a token */
#define NR     2            /* request ids per client */
#define NRID   4            /* NC * NR */
#ifndef LIMIT
#define LIMIT 2
#endif
#ifndef FREE
#define FREE 1            /* counted guesses before pacing starts */
#endif
#ifndef DELAY
#define DELAY 2            /* pacing delay (ticks), the last one repeating */
#endif
#ifndef MAXT
#define MAXT 3            /* the clock stops here (bounded) */
#endif
#ifndef MAXE
#define MAXE 1            /* successes modelled */
#endif
#ifndef SENDS
#define SENDS 3            /* requests per client */
#endif

mtype = { START, FINISH, ANSWER, REFUSED };

/* A record: version, failures, locked, epoch, has-last-start, last start, answers.
 * answers: 3 bits per request id: bits 0-1 = epoch+1 of the stored answer (0 = none),
 * bit 2 = which KE1 it answered. */
#define ANS(a, x)      (((a) >> (3 * (x))) & 7)
#define ANS_EP(a, x)   (ANS(a, x) & 3)
#define ANS_KE(a, x)   (ANS(a, x) >> 2)
#define COPY(d, s)     d##_ver = s##_ver; d##_fail = s##_fail; d##_lock = s##_lock; \
                       d##_ep = s##_ep; d##_hl = s##_hl; d##_ls = s##_ls; d##_ans = s##_ans
#define PACED(p, t)    (p##_hl && p##_fail >= FREE && (t) < p##_ls + DELAY)

/* the store: s_ = current; p_, q_ = the two versions before it (what a serializable read
 * may return: a version the record really had, possibly missing recent writes) */
byte s_ver = 1, s_fail, s_ep; bit s_lock, s_hl; byte s_ls; short s_ans;
byte p_ver, p_fail, p_ep; bit p_lock, p_hl; byte p_ls; short p_ans;
byte q_ver, q_fail, q_ep; bit q_lock, q_hl; byte q_ls; short q_ans;
byte has_prev;          /* how many earlier versions a stale read may return (0..2) */
byte now;

/* ghosts */
byte fresh[MAXE + 1];      /* answers counted per epoch (P1) */
byte counted[NRID];        /* bit e set: request id counted in epoch e (P3) */

chan reqc = [2] of { mtype, byte, byte, bit };    /* kind, client, rid or epoch, KE1 */
chan resp[NC] = [1] of { mtype, byte };           /* kind, epoch */

#define COMMIT         COPY(q, p); COPY(p, s); has_prev = (has_prev < 2 -> has_prev + 1 : 2); s_ver++

#define R_NONE    0
#define R_REFUSE  1
#define R_REPLAY  2
#define R_LOCK    3
#define R_COUNT   4
#define R_REREAD  5

/*
 * A vault node. Each atomic block is one step another process cannot interleave with:
 * the read together with the purely local decisions on what was read (vault-service.ts
 * decides on its local copy), each compare-and-swap, each send.
 */
proctype Node() {
  mtype kind; byte c, x; bit ke;
  byte r_ver, r_fail, r_ep; bit r_lock, r_hl; byte r_ls; short r_ans;
  bit lin, must, ok;
  byte act, tries;
#ifdef BUG_PACING_IN_NODE
  bit m_hl; byte m_ls, m_fail;
#endif
end_top:
  atomic { reqc?kind, c, x, ke; must = 0; tries = 0 };
  /* (a request lost before a node acts on it is a client that did not send it) */
  if
  :: kind == FINISH -> goto finish
  :: kind == START -> skip
  fi;
read:
  atomic {
    /* the read: linearizable (current), or on a first try possibly stale (previous) */
    if
    :: COPY(r, s); lin = 1
    :: tries == 0 && !must && has_prev >= 1 -> COPY(r, p); lin = 0
    :: tries == 0 && !must && has_prev >= 2 -> COPY(r, q); lin = 0
    fi;
    /* vault-service.ts loginStart: a stale read that does not show an active record with
     * guesses left is re-read linearizably before deciding anything */
    if
    :: !lin && (r_lock || r_fail >= LIMIT) -> act = R_REREAD
    :: else -> act = R_NONE
    fi;
    if
    :: act == R_NONE && r_lock -> act = R_REFUSE                        /* LOCKED */
    :: else -> skip
    fi;
#ifndef BUG_NO_IDEMPOTENCY
    /* the stored answer of this request id in this login epoch */
    if
    :: act == R_NONE && ANS_EP(r_ans, x) == r_ep + 1 ->
#ifndef BUG_STALE_REPLAY
         if
         :: !lin -> act = R_REREAD          /* confirmed on a linearizable read */
         :: else -> skip
         fi;
#endif
         if
         :: act == R_NONE && ANS_KE(r_ans, x) != ke -> act = R_REFUSE   /* CONFLICT */
         :: act == R_NONE && ANS_KE(r_ans, x) == ke ->
              act = R_REPLAY;
              assert(!s_lock)               /* P2: at the read the replay rests on */
         :: else -> skip
         fi
    :: else -> skip
    fi;
#endif
    if
    :: act == R_NONE && r_fail >= LIMIT -> act = R_LOCK   /* last guess given out */
    :: else -> skip
    fi;
#ifdef BUG_PACING_IN_NODE
    if
    :: act == R_NONE && m_hl && m_fail >= FREE && now < m_ls + DELAY -> act = R_REFUSE
    :: else -> skip
    fi;
#else
    if
    :: act == R_NONE && PACED(r, now) ->
         if
         :: !lin -> act = R_REREAD
         :: else -> act = R_REFUSE                          /* RATE_LIMITED */
         fi
    :: else -> skip
    fi;
#endif
    if
    :: act == R_NONE -> act = R_COUNT
    :: else -> skip
    fi;
    if
    :: act == R_REREAD -> must = 1
    :: else -> skip
    fi
  };
  if
  :: act == R_REREAD -> goto read
  :: act == R_REFUSE -> goto refuse
  :: act == R_REPLAY -> goto answer
  :: act == R_LOCK ->
       atomic {
         if
         :: s_ver == r_ver -> COMMIT; s_lock = 1; s_ans = 0
         :: else -> skip
         fi
       };
       goto refuse
  :: act == R_COUNT -> skip
  fi;
  /* the HSM computes KE2 here; a crash now answers nothing and counts nothing */
  if
  :: goto done
  :: skip
  fi;
  atomic {
#ifdef BUG_BLIND_WRITE
    if
    :: true ->
#else
    if
    :: s_ver == r_ver ->
#endif
         assert(!PACED(s, now));                                  /* P4 */
         assert(s_fail < LIMIT && !s_lock);                       /* P1, P2 */
         assert((counted[x] & (1 << s_ep)) == 0);                 /* P3 */
         counted[x] = counted[x] | (1 << s_ep);
         fresh[s_ep]++;
         assert(fresh[s_ep] <= LIMIT);                            /* P1 */
         COMMIT;
#ifdef BUG_BLIND_WRITE
         s_fail = r_fail + 1;
#else
         s_fail++;
#endif
         s_hl = 1; s_ls = now;
         s_ans = (s_ans & ~(7 << (3 * x))) | (((ke << 2) | (s_ep + 1)) << (3 * x));
         r_ep = s_ep;
#ifdef BUG_PACING_IN_NODE
         m_hl = 1; m_ls = now; m_fail = s_fail;
#endif
         ok = 1
    :: else -> ok = 0; tries++
    fi
  };
  if
  :: !ok -> goto read
  :: else -> skip
  fi;
answer:
  if
  :: atomic { nfull(resp[c]) -> resp[c]!ANSWER, r_ep }
  :: true -> skip                                    /* the answer is lost / node crashes */
  fi;
  goto done;
refuse:
  if
  :: atomic { nfull(resp[c]) -> resp[c]!REFUSED, 0 }
  :: true -> skip
  fi;
  goto done;
finish:
  /* x = the login epoch of the answer the owner finishes (its KE3 verified) */
  atomic {
    COPY(r, s);
    if
    :: !r_lock && r_ep == x && r_ep < MAXE -> act = R_COUNT
    :: else -> act = R_REFUSE
    fi
  };
  if
  :: act == R_COUNT ->
       if
       :: goto done                                  /* crash before the reset */
       :: atomic {
            if
            :: s_ver == r_ver -> COMMIT; s_fail = 0; s_hl = 0; s_ep++; s_ans = 0; ok = 1
            :: else -> ok = 0
            fi
          }
       fi;
       if
       :: !ok -> goto finish
       :: else -> skip
       fi
  :: else -> skip
  fi;
done:
  skip;
  /* forget the request (what a crash does too): keeps the state space small */
  d_step {
    kind = 0; c = 0; x = 0; ke = 0; lin = 0; must = 0; ok = 0; tries = 0; act = 0;
    r_ver = 0; r_fail = 0; r_ep = 0; r_lock = 0; r_hl = 0; r_ls = 0; r_ans = 0
  };
  goto end_top
}

proctype Client(byte c) {
  byte sends, x, e; bit ke; mtype m;
end_client:
  do
  :: atomic {
       sends < SENDS && nfull(reqc) ->
       if
       :: c == 0 -> x = 0                /* the owner: one request id, resent/duplicated */
       :: c == 1 -> x = 2                /* the attacker: two ids, and another KE1 ... */
       :: c == 1 -> x = 2; ke = 1        /* ... under an id already used */
       :: c == 1 -> x = 3
       fi;
       reqc!START, c, x, ke; sends++; x = 0; ke = 0
     }
  :: atomic {
       resp[c]?m, e ->
       if
       :: c == 0 && m == ANSWER && sends < SENDS && nfull(reqc) ->
            reqc!FINISH, c, e, 0; sends++
       :: true -> skip
       fi;
       m = 0; e = 0
     }
  :: sends >= SENDS -> break
  od
}

proctype Clock() {
  do
  :: atomic { now < MAXT -> now++ }
  :: atomic { now >= MAXT -> break }
  od
}

init {
  atomic {
    run Node(); run Node();
    run Client(0); run Client(1);
    run Clock()
  }
}
