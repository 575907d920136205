// Debian's cpp-httplib (0.11) is compiled with a listen backlog of 5, so a
// burst of connections (50 clients submitting at once) overflows the accept
// queue and the kernel resets some of them. RaiseListenBacklog finds this
// process's listening TCP socket bound to `port` and listens again with the
// system maximum, which Linux applies to a socket already listening.
//
// Thread-safety: safe from any thread.
#pragma once

#include "util/result.h"

namespace strata::util {

Status RaiseListenBacklog(int port);

}  // namespace strata::util
