# Developer programs built on the engine.
$(eval $(call add_program,sotto-engine,daemon/tools/sotto-engine.c,))
