{
  "targets": [
    {
      "target_name": "husk",
      "sources": [
        "native/addon.cc",
        "native/child.cc",
        "native/namespaces.cc",
        "native/network.cc",
        "native/mounts.cc",
        "native/copyup.cc",
        "native/devices.cc",
        "native/process.cc",
        "native/caps.cc",
        "native/terminal.cc",
        "native/seccomp.cc",
        "native/exec.cc",
        "native/host.cc",
        "native/bpf.cc",
        "native/util.cc",
        "native/server.cc",
        "native/doorwire.cc",
        "native/planwire.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    },
    {
      "target_name": "frontdoor",
      "type": "executable",
      "sources": [
        "native/frontdoor.cc",
        "native/doorwire.cc",
        "native/planwire.cc",
        "native/util.cc",
        "native/child.cc",
        "native/namespaces.cc",
        "native/network.cc",
        "native/mounts.cc",
        "native/copyup.cc",
        "native/devices.cc",
        "native/process.cc",
        "native/caps.cc",
        "native/terminal.cc",
        "native/seccomp.cc",
        "native/exec.cc"
      ],
      "defines": ["_GNU_SOURCE", "HUSK_NODE_PATH=\"<!(node -p process.execPath)\""],
      "cflags!": ["-O3"],
      "cflags": ["-O2"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers", "-Wno-format-truncation"],
      "ldflags!": ["-rdynamic"],
      "ldflags": ["-Wl,--as-needed", "-Wl,--gc-sections", "-s"]
    },
    {
      "target_name": "probe",
      "type": "executable",
      "sources": ["test/probe/probe.c"],
      "cflags": ["-O2", "-Wall", "-Wno-unused-result"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "seccompagent",
      "type": "executable",
      "sources": ["test/tools/seccompagent.c"],
      "cflags": ["-O2", "-Wall"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "recvtty",
      "type": "executable",
      "sources": ["test/tools/recvtty.c"],
      "cflags": ["-O2", "-Wall"],
      "ldflags": ["-static"]
    }
  ]
}
