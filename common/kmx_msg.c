/* placeholder: replaced by the real module */
#include "kmx_msg.h"
typedef int kmx_placeholder_t;
