// mapShared: a file mapped MAP_SHARED and handed to JavaScript as an ArrayBuffer (see shared_memory.cc).
#pragma once
#include <napi.h>

namespace revenant::addon {

// mapShared(path: string, bytes: number, create: boolean) -> ArrayBuffer
Napi::Value MapShared(const Napi::CallbackInfo& info);

}  // namespace revenant::addon
