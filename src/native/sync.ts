// The sync socket's message types: the mirror of native/sync.h (read the table there).
export const Msg = {
  StepDone: 1,
  StepFailed: 2,
  InitPid: 3,
  Hooks: 4,
  UserMaps: 5,
  Console: 6,
  Ready: 7,
  SeccompListener: 8,
  InitPidInCgroup: 9,
  Continue: 100,
} as const;
