/* SPDX-License-Identifier: MIT */
/* The named errors of org.sotto.Sotto1 (see dbus/org.sotto.Sotto1.xml). */
#pragma once

#include <string.h>

#define SOTTO_ERROR_INVALID_INPUT "org.sotto.Sotto1.Error.InvalidInput"
#define SOTTO_ERROR_MODEL_UNAVAILABLE "org.sotto.Sotto1.Error.ModelUnavailable"
#define SOTTO_ERROR_BUSY "org.sotto.Sotto1.Error.Busy"
#define SOTTO_ERROR_CANCELLED "org.sotto.Sotto1.Error.Cancelled"
#define SOTTO_ERROR_WORKER_FAILED "org.sotto.Sotto1.Error.WorkerFailed"
#define SOTTO_ERROR_CONTEXT_FULL "org.sotto.Sotto1.Error.ContextFull"
#define SOTTO_ERROR_SHUTTING_DOWN "org.sotto.Sotto1.Error.ShuttingDown"
#define SOTTO_ERROR_QUOTA_EXCEEDED "org.sotto.Sotto1.Error.QuotaExceeded"
#define SOTTO_ERROR_NOT_AUTHORIZED "org.sotto.Sotto1.Error.NotAuthorized"
/* polkit is not running or failed: sottod refuses what it cannot check. */
#define SOTTO_ERROR_AUTHORIZATION_UNAVAILABLE "org.sotto.Sotto1.Error.AuthorizationUnavailable"
#define SOTTO_ERROR_SOURCE_VANISHED "org.sotto.Sotto1.Error.SourceVanished"
#define SOTTO_ERROR_CAPTURE_FAILED "org.sotto.Sotto1.Error.CaptureFailed"

#define STREQ(a, b) (strcmp((a), (b)) == 0)
