/* placeholder: replaced by the real module */
#include "kmx_rkey.h"
typedef int kmx_placeholder_t;
