#!/bin/sh
':' /*
# This file is both a shell script and the Node.js entry point. Run as `backupctl ...`, sh reads it first: the long-
# running verbs (`worker`, `up`) get the start-up settings of README "Memory and start-up" unless the environment
# already sets them (V8's young generation capped at 2 MiB per semi-space in every thread, glibc's malloc arenas at 2),
# and `gc` exposed so that transfers can free their dead SSH buffers promptly (src/lib/young-gc.ts; `restore` and
# `drill`, which may run a worker of their own, get that alone),
# then sh replaces itself with node, which reads this file as JavaScript (the lines up to the comment's end are a
# string and a comment to it). `node bin/backupctl.js ...` skips the shell part and runs with Node's defaults.
verb=
skip=
for a in "$@"; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case $a in
    -c|--config|--log-level) skip=1 ;;
    -*) ;;
    *) verb=$a; break ;;
  esac
done
case $verb in
  worker|up)
    [ -n "${MALLOC_ARENA_MAX+set}" ] || { MALLOC_ARENA_MAX=2; export MALLOC_ARENA_MAX; }
    case " $NODE_OPTIONS " in
      *--max-semi-space-size*) exec node --expose-gc "$0" "$@" ;;
      *) exec node --expose-gc --max-semi-space-size=2 "$0" "$@" ;;
    esac ;;
  restore|drill)
    # They may run a worker of their own, whose fetch reads through SSH: gc exposed, Node.js's other defaults.
    exec node --expose-gc "$0" "$@" ;;
esac
exec node "$0" "$@"
*/
import('../dist/cli/index.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli')) {
    console.error('backupctl is not built yet: run `npm install` (or `npm run build`) in the project folder first');
    process.exit(2);
  }
  throw err;
});
