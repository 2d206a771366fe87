"""The built-in plugins, one package each; the plugin manager is ``itcrosswalk.registry``."""
