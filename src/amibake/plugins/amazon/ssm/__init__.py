"""SSH through an SSM Session Manager port-forwarding session, with no external binary: the data
channel's messages (:mod:`.message`), its client state (:mod:`.channel`), the stream multiplexing of
current agents (:mod:`.smux`), the loopback tunnel (:mod:`.tunnel`) and the build step that opens it
(:mod:`.step`), after AWS's open-source session-manager-plugin."""
