package pageforge.neo4j;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.SettingValueParsers;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.QueryExecutionException;

/**
 * Runs an embedded Neo4j Community DBMS with its Bolt connector on 127.0.0.1 until SIGTERM.
 *
 * <p>Usage: {@code LocalNeo4jLauncher <data-dir> <bolt-port> [page-cache-size]}. Prints a line
 * starting with {@value #READY_PREFIX} once the default database accepts Bolt connections.
 * With the environment variable {@value #PASSWORD_ENV} set (the environment, not the command
 * line, so other users cannot read it in the process list), authentication is on and the
 * {@code neo4j} user's password is set to it at every start, as a Neo4j server's
 * {@code NEO4J_AUTH} does; unset, authentication is off.
 * Exit codes: 143 after SIGTERM (clean shutdown through the hook, the JVM's usual code), 2 bad
 * arguments, 3 port already taken, 4 start-up failure.
 */
public final class LocalNeo4jLauncher {
    static final String READY_PREFIX = "PAGEFORGE_NEO4J_READY";
    static final String PASSWORD_ENV = "PAGEFORGE_NEO4J_PASSWORD";
    private static final String ADMIN_USER = "neo4j";
    private static final String HOST = "127.0.0.1";
    private static final long AVAILABILITY_TIMEOUT_MS = 300_000;
    private static final Duration BOLT_SHUTDOWN_WAIT = Duration.ofSeconds(1);

    private LocalNeo4jLauncher() {}

    public static void main(String[] args) {
        if (args.length < 2 || args.length > 3) {
            fail(2, "usage: LocalNeo4jLauncher <data-dir> <bolt-port> [page-cache-size, e.g. 128m]");
        }
        Path dataDir = Path.of(args[0]).toAbsolutePath();
        int boltPort = parsePort(args[1]);
        String pageCache = args.length == 3 ? args[2] : "128m";

        if (!portIsFree(boltPort)) {
            fail(3, "Bolt port " + HOST + ":" + boltPort + " is already in use; pick another port");
        }

        String password = System.getenv(PASSWORD_ENV);
        boolean authEnabled = password != null && !password.isEmpty();

        DatabaseManagementService dbms;
        try {
            Files.createDirectories(dataDir);
            dbms = new DatabaseManagementServiceBuilder(dataDir)
                    .setConfig(BoltConnector.enabled, true)
                    .setConfig(BoltConnector.listen_address, new SocketAddress(HOST, boltPort))
                    .setConfig(GraphDatabaseSettings.auth_enabled, authEnabled)
                    .setConfig(HttpConnector.enabled, false)
                    .setConfig(HttpsConnector.enabled, false)
                    .setConfig(GraphDatabaseSettings.udc_enabled, false)
                    .setConfig(GraphDatabaseSettings.pagecache_memory, SettingValueParsers.BYTES.parse(pageCache))
                    // Bolt's thread pools are torn down after the databases have stopped and
                    // checkpointed; the default 5 s + 5 s grace only delays SIGTERM to exit. The
                    // "event loop group ... forcefully terminated" warnings this causes are expected.
                    .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, BOLT_SHUTDOWN_WAIT)
                    .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, BOLT_SHUTDOWN_WAIT)
                    .build();
        } catch (IOException | RuntimeException e) {
            e.printStackTrace();
            fail(4, "Neo4j failed to start in " + dataDir + ": " + e);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("PAGEFORGE_NEO4J_STOPPING");
            System.out.flush();
            dbms.shutdown();
            System.out.println("PAGEFORGE_NEO4J_STOPPED");
            System.out.flush();
            stopped.countDown();
        }, "pageforge-neo4j-shutdown"));

        GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        if (!db.isAvailable(AVAILABILITY_TIMEOUT_MS)) {
            fail(4, "default database did not become available within " + AVAILABILITY_TIMEOUT_MS + " ms");
        }
        if (authEnabled) {
            try {
                setAdminPassword(dbms, password);
            } catch (RuntimeException e) {
                e.printStackTrace();
                fail(4, "could not set the " + ADMIN_USER + " user's password: " + e.getMessage());
            }
        }
        System.out.println(READY_PREFIX + " bolt://" + HOST + ":" + boltPort + " pid="
                + ProcessHandle.current().pid() + " data=" + dataDir + " neo4j=" + neo4jVersion());
        System.out.flush();

        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Sets the admin's password (a fresh store's is "neo4j", to be changed on first login). */
    private static void setAdminPassword(DatabaseManagementService dbms, String password) {
        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        try {
            system.executeTransactionally(
                    "ALTER USER " + ADMIN_USER + " SET PASSWORD $password CHANGE NOT REQUIRED",
                    Map.of("password", password));
        } catch (QueryExecutionException e) {
            // Neo4j refuses to "change" a password to the one it already has: nothing to do then.
            if (!e.getMessage().contains("Old password and new password cannot be the same")) {
                throw e;
            }
        }
    }

    private static int parsePort(String text) {
        try {
            int port = Integer.parseInt(text);
            if (port > 0 && port < 65536) {
                return port;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        fail(2, "bolt port must be an integer in 1..65535, got '" + text + "'");
        return -1;
    }

    private static boolean portIsFree(int port) {
        try (ServerSocket socket = new ServerSocket()) {
            // Same option Netty uses for the Bolt server, so TIME_WAIT leftovers do not count as taken.
            socket.setReuseAddress(true);
            socket.bind(new InetSocketAddress(InetAddress.getByName(HOST), port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static String neo4jVersion() {
        Package pkg = DatabaseManagementServiceBuilder.class.getPackage();
        String version = pkg == null ? null : pkg.getImplementationVersion();
        return version == null ? "unknown" : version;
    }

    private static void fail(int code, String message) {
        System.err.println("PAGEFORGE_NEO4J_ERROR " + message);
        System.err.flush();
        System.exit(code);
    }
}
