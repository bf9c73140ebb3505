/* Preloaded by `make test-asan` only: Lua unloads C modules (dlclose) when the state
 * closes, after which LeakSanitizer cannot name the functions of a leak's stack. Keeping
 * every library mapped makes its reports readable; nothing else changes. */
int dlclose(void *handle);

int dlclose(void *handle) {
  (void)handle;
  return 0;
}
