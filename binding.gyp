{
  "targets": [
    {
      "target_name": "turbocoap",
      "sources": [
        "<!@(node -p \"require('./native/sources.json').core.join(' ')\")",
        "<!@(node -p \"require('./native/sources.json').driver.join(' ')\")",
        "native/binding/addon.cc",
        "native/binding/udp.c",
        "native/binding/stream.c",
        "native/binding/stream_feed.c",
        "native/binding/glue.c",
        "native/driver/tls.c",
        "native/driver/dtls.c"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include",
        "native/driver"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "TC_WITH_TLS",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags": ["-Wall", "-Wextra"],
      "cflags!": ["-Wno-unused-parameter"],
      "cflags_c": ["-std=c11"],
      "cflags_cc": ["-std=c++17"],
      "xcode_settings": {
        "GCC_C_LANGUAGE_STANDARD": "c11",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CFLAGS": ["-Wall", "-Wextra"],
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      }
    },
    {
      "target_name": "coap-bench",
      "type": "executable",
      "variables": {
        "bench_openssl%": "<!(pkg-config --exists libssl libcrypto 2>/dev/null && echo 1 || echo 0)"
      },
      "conditions": [
        ["OS==\"linux\"", {
          "sources": [
            "<!@(node -p \"require('./native/sources.json').core.join(' ')\")",
            "native/tools/coap-bench.c",
            "native/tools/bench_tcp.c",
            "native/tools/bench_dtls.c"
          ]
        }],
        ["OS==\"linux\" and bench_openssl==1", {
          "defines": ["TCB_TLS"],
          "libraries": ["-lssl", "-lcrypto"]
        }]
      ],
      "include_dirs": ["native/include"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags!": ["-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"]
    }
  ]
}
